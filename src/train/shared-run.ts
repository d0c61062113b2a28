/**
 * What a share link carries: an encoder run's RunConfig (its `kind` absent in links made before
 * decoder runs could be shared), or a decoder's CTD statements run — the decoder, its quantization,
 * the CTD data's source and fingerprint, the split and the short run's settings. One format, told
 * apart by `kind`, checked by one validator.
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

export type SharedRun = RunConfig | StatementRunConfig;

/** A shared run from outside (a share link): an encoder run or a decoder statements run, every field checked; a kind this app does not know is refused. */
export function validateSharedRun(value: unknown): SharedRun {
  if (isObject(value) && value.kind === 'decoder-statements') return validateStatementRunConfig(value);
  if (isObject(value) && value.kind !== undefined && value.kind !== 'encoder') {
    throw new Error(`this share link is for a kind of run this version of the app does not know (${JSON.stringify(value.kind)}); it may come from a newer version`);
  }
  return validateRunConfig(value);
}

/** Check a decoder statements run from outside; throws one error listing every problem. */
export function validateStatementRunConfig(value: unknown): StatementRunConfig {
  if (!isObject(value)) throw new Error('the decoder run configuration is not an object');
  const c = value as unknown as StatementRunConfig;
  if (c.v !== RUN_CONFIG_VERSION) throw new Error(`this decoder run configuration has version ${JSON.stringify(c.v)}; this app reads version ${RUN_CONFIG_VERSION}`);
  const problems: string[] = [];
  const { num, str } = fieldChecks(problems);
  const whole = (lo: number, hi: number) => (n: number) => Number.isInteger(n) && n >= lo && n <= hi;
  checkModelRef(c.model, problems);
  if (c.quantization !== 'nf4' && c.quantization !== 'f32') problems.push(`quantization must be nf4 or f32 (got ${JSON.stringify(c.quantization)})`);
  if (!isObject(c.data)) problems.push('data is missing');
  else {
    checkDataSource(c.data.source, problems);
    str(c.data.fingerprint, 'data.fingerprint');
  }
  if (c.split !== 'random' && c.split !== 'entity') problems.push(`split must be random or entity (got ${JSON.stringify(c.split)})`);
  num(c.steps, 'steps', whole(1, 100_000), 'an integer in 1..100000');
  num(c.batchSize, 'batchSize', whole(1, 1024), 'an integer in 1..1024');
  num(c.learningRate, 'learningRate', (n) => n > 0 && n < 1, 'in (0, 1)');
  checkSeed(c.seed, 'seed', problems);
  if (problems.length > 0) throw new Error(`the decoder run configuration is not valid:\n  ${problems.join('\n  ')}`);
  return c;
}
