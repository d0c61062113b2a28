/** Errors the data layer raises; each message says what was wrong and what was kept. */

/** The input is not the kind of file expected (not text, missing columns, no valid rows). */
export class DataFormatError extends Error {
  override name = 'DataFormatError';
}

/** The input stopped early or its compressed data is corrupt (a truncated download). */
export class TruncatedInputError extends Error {
  override name = 'TruncatedInputError';
}

/** The browser refused to store more (QuotaExceededError); committed batches are kept. */
export class StorageFullError extends Error {
  override name = 'StorageFullError';
}

/** A dataset, build or split that the caller named does not exist or cannot be used that way. */
export class DatasetError extends Error {
  override name = 'DatasetError';
}
