/** An error whose message is shown to the CLI user as is (no stack trace, no error name). */
export class UsageError extends Error {
  override name = 'UsageError';
}
