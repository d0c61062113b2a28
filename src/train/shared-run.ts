/**
 * What a share link carries: an encoder run's RunConfig (its `kind` absent in links made before
 * decoder runs could be shared), a decoder's CTD statements run — the decoder, its quantization,
 * the CTD data's source and fingerprint, the split and the short run's settings — or a decoder's
 * clinical two-adapter run, whose notes and statements file it names and fingerprints only (the
 * notes never leave the sender's machine). One format, told apart by `kind`, checked by one validator.
 */
import type { SplitMode } from '../data/builder.ts';
import type { ModelRef } from '../model/model-ref.ts';
import { type DataRef, RUN_CONFIG_VERSION, type RunConfig, checkDataSource, checkModelRef, checkSeed, fieldChecks, isObject, validateRunConfig } from './run-config.ts';

/** A decoder's CTD statements run (the study's preset: LoRA r16 α32 on every linear layer), as the app reruns it. */
export interface StatementRunConfig {
  v: typeof RUN_CONFIG_VERSION;
  kind: 'decoder-statements';
  /** A Hub decoder is pinned to the commit its revision resolved to. */
  model: ModelRef;
  quantization: 'nf4' | 'f32';
  /** The CTD dataset's source, and the fingerprint of the statements built from it (both splits, in order). */
  data: { source: DataRef['source']; fingerprint: string };
  split: SplitMode;
  steps: number;
  /** Statements per optimizer step. */
  batchSize: number;
  learningRate: number;
  /** Seeds the split, the adapter's init, the order, dropout and the bootstrap. */
  seed: number;
}

/** A file of the sender's as a link names it: the receiver gives theirs, refused unless its content has this fingerprint. */
export interface FingerprintedFile {
  name: string;
  fingerprint: string;
}

/**
 * A decoder's clinical two-adapter run: a domain adapter on the sender's notes, then a task adapter
 * over it on labelled statements (a picked file's, or a CTD dataset's), both with the same settings.
 */
export interface ClinicalRunConfig {
  v: typeof RUN_CONFIG_VERSION;
  kind: 'decoder-clinical';
  model: ModelRef;
  quantization: 'nf4' | 'f32';
  /** Every note document by name (sorted, as the run orders them) and its text's fingerprint. */
  notes: FingerprintedFile[];
  /** The labelled statements: a file by name, or a CTD dataset by its source; with the statements' fingerprint. */
  task: ({ kind: 'file' } & FingerprintedFile) | { kind: 'ctd'; source: DataRef['source']; fingerprint: string };
  heldOutShare: number;
  /** Seeds both splits, the adapters' init, the order, dropout and the bootstrap. */
  seed: number;
  /** Steps of each adapter. */
  steps: number;
  learningRate: number;
}

export type SharedRun = RunConfig | StatementRunConfig | ClinicalRunConfig;

/** A shared run from outside (a share link): an encoder run or a decoder statements run, every field checked; a kind this app does not know is refused. */
export function validateSharedRun(value: unknown): SharedRun {
  if (isObject(value) && value.kind === 'decoder-statements') return validateStatementRunConfig(value);
  if (isObject(value) && value.kind === 'decoder-clinical') return validateClinicalRunConfig(value);
  if (isObject(value) && value.kind !== undefined && value.kind !== 'encoder') {
    throw new Error(`this share link is for a kind of run this version of the app does not know (${JSON.stringify(value.kind)}); it may come from a newer version`);
  }
  return validateRunConfig(value);
}

const whole = (lo: number, hi: number) => (n: number) => Number.isInteger(n) && n >= lo && n <= hi;

/**
 * Check what every decoder run from outside has (version, decoder, quantization, steps, learning
 * rate, seed), then its own fields with `checkRest`; throws one error listing every problem.
 */
function validateDecoderRun<T extends StatementRunConfig | ClinicalRunConfig>(value: unknown, checkRest: (c: T, problems: string[]) => void): T {
  if (!isObject(value)) throw new Error('the decoder run configuration is not an object');
  const c = value as unknown as T;
  if (c.v !== RUN_CONFIG_VERSION) throw new Error(`this decoder run configuration has version ${JSON.stringify(c.v)}; this app reads version ${RUN_CONFIG_VERSION}`);
  const problems: string[] = [];
  const { num } = fieldChecks(problems);
  checkModelRef(c.model, problems);
  if (c.quantization !== 'nf4' && c.quantization !== 'f32') problems.push(`quantization must be nf4 or f32 (got ${JSON.stringify(c.quantization)})`);
  checkRest(c, problems);
  num(c.steps, 'steps', whole(1, 100_000), 'an integer in 1..100000');
  num(c.learningRate, 'learningRate', (n) => n > 0 && n < 1, 'in (0, 1)');
  checkSeed(c.seed, 'seed', problems);
  if (problems.length > 0) throw new Error(`the decoder run configuration is not valid:\n  ${problems.join('\n  ')}`);
  return c;
}

/** Check a decoder statements run from outside; throws one error listing every problem. */
export function validateStatementRunConfig(value: unknown): StatementRunConfig {
  return validateDecoderRun<StatementRunConfig>(value, (c, problems) => {
    const { num, str } = fieldChecks(problems);
    if (!isObject(c.data)) problems.push('data is missing');
    else {
      checkDataSource(c.data.source, problems);
      str(c.data.fingerprint, 'data.fingerprint');
    }
    if (c.split !== 'random' && c.split !== 'entity') problems.push(`split must be random or entity (got ${JSON.stringify(c.split)})`);
    num(c.batchSize, 'batchSize', whole(1, 1024), 'an integer in 1..1024');
  });
}

/** Check a decoder clinical two-adapter run from outside; throws one error listing every problem. */
export function validateClinicalRunConfig(value: unknown): ClinicalRunConfig {
  return validateDecoderRun<ClinicalRunConfig>(value, (c, problems) => {
    const { num, str } = fieldChecks(problems);
    if (!Array.isArray(c.notes) || c.notes.length < 2) problems.push(`notes must list at least 2 note files (got ${Array.isArray(c.notes) ? c.notes.length : JSON.stringify(c.notes)})`);
    else {
      c.notes.forEach((note: unknown, i) => {
        if (!isObject(note)) return void problems.push(`notes[${i}] is not a file's name and fingerprint`);
        str(note.name, `notes[${i}].name`);
        str(note.fingerprint, `notes[${i}].fingerprint`);
      });
      const names = c.notes.map((n) => n?.name);
      const repeated = names.find((name, i) => names.indexOf(name) !== i);
      if (repeated !== undefined) problems.push(`notes names ${JSON.stringify(repeated)} twice`);
    }
    const task: unknown = c.task;
    if (!isObject(task)) problems.push('task is missing');
    else {
      if (task.kind === 'file') str(task.name, 'task.name');
      else if (task.kind === 'ctd') checkDataSource(task.source, problems, 'task.source');
      else problems.push(`task.kind must be file or ctd (got ${JSON.stringify(task.kind)})`);
      str(task.fingerprint, 'task.fingerprint');
    }
    num(c.heldOutShare, 'heldOutShare', (n) => n > 0 && n < 1, 'in (0, 1)');
  });
}
