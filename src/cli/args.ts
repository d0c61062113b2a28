/** Command-line option parsing for the CLI commands (node:util parseArgs with clear errors). */
import { parseArgs } from 'node:util';
import { UsageError } from './errors.ts';

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; default?: string | boolean; multiple?: boolean }>;

export function parseOptions<T extends OptionSpec>(args: string[], options: T, usage: string) {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    if ((values as { help?: boolean }).help) {
      console.log(usage);
      process.exit(0);
    }
    return { values, positionals };
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${usage}`);
  }
}

/** A required string option, or a UsageError naming it. */
export function required(values: Record<string, unknown>, name: string, usage: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required\n\n${usage}`);
  return v;
}

/** A numeric option: NaN or out of range → UsageError naming it (and saying what it must be, when `expected` is given). */
export function numberOption(values: Record<string, unknown>, name: string, fallback: number, check: (n: number) => boolean = Number.isFinite, expected?: string): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (expected !== undefined && (String(v).trim() === '' || !check(n))) throw new UsageError(`--${name} must be ${expected}, got ${String(v)}`);
  if (!check(n)) throw new UsageError(`--${name} got ${String(v)}, which is not valid`);
  return n;
}
