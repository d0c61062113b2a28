/**
 * `qlora_lab.json`, the side file of an adapter folder: what the adapter was trained with besides
 * its LoRA config — the exact base revision, the base precision, pooling, normalisation, maximum
 * length and the prompt of each role, query and passage (and, for CLI runs, the `train` arguments). adapter_config.json keeps only
 * fields PEFT itself reads (base_model_name_or_path, revision), so PEFT loads the folder unchanged
 * and ignores this file.
 */
import { POOLING_MODES, type PoolingMode } from '../engine/ops/pooling-modes.ts';
import type { BertConfig } from './config.ts';
import { type PeftAdapter, type PeftAdapterFiles, writePeftAdapter } from './peft-files.ts';
import type { SentenceSettings } from './sentence-config.ts';

export const ADAPTER_SETTINGS_FILE = 'qlora_lab.json';
const FORMAT = 'qlora-lab adapter settings';
const VERSION = 1;

export interface AdapterSettings {
  /** Hub repo id or folder of the base. */
  baseModel: string;
  /** The commit a Hub revision resolved to (or the revision given), when there is one. */
  revision?: string;
  quantization: 'nf4' | 'f32';
  sentence: SentenceSettings;
  /** `qlora-lab train` runs: the command's arguments, so `export-run --from` rebuilds the very run… */
  trainArgs?: string[];
  /** …from the same data file (its SHA-256). */
  dataSha256?: string;
}

export function writeAdapterSettings(s: AdapterSettings): string {
  const file = {
    format: FORMAT,
    version: VERSION,
    base_model: s.baseModel,
    revision: s.revision ?? null,
    quantization: s.quantization,
    pooling: s.sentence.pooling,
    normalize: s.sentence.normalize,
    max_seq_length: s.sentence.maxLength,
    prompts: s.sentence.prompts,
    ...(s.trainArgs ? { train_args: s.trainArgs } : {}),
    ...(s.dataSha256 ? { data_sha256: s.dataSha256 } : {}),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** An adapter folder for a base `model` (its family's module names): PEFT's two files and the side file. */
export function adapterFolder(adapter: PeftAdapter, model: BertConfig, settings: AdapterSettings): PeftAdapterFiles & { [ADAPTER_SETTINGS_FILE]: string } {
  return { ...writePeftAdapter(adapter, model), [ADAPTER_SETTINGS_FILE]: writeAdapterSettings(settings) };
}

/** Read a side file; `where` names it in every message. */
export function readAdapterSettings(text: string, where: string): AdapterSettings {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${where} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || json.format !== FORMAT) throw new Error(`${where} is not a qlora-lab adapter settings file (no "format": "${FORMAT}")`);
  if (json.version !== VERSION) throw new Error(`${where} has version ${JSON.stringify(json.version)}; this qlora-lab reads version ${VERSION}`);
  const problems: string[] = [];
  const { base_model, revision, quantization, pooling, normalize, max_seq_length, prompts, train_args, data_sha256 } = json;
  if (typeof base_model !== 'string' || base_model === '') problems.push(`base_model must be a non-empty text (got ${JSON.stringify(base_model)})`);
  if (revision !== null && typeof revision !== 'string') problems.push(`revision must be a text or null (got ${JSON.stringify(revision)})`);
  if (quantization !== 'nf4' && quantization !== 'f32') problems.push(`quantization must be nf4 or f32 (got ${JSON.stringify(quantization)})`);
  // A pooling this engine does not have is refused, not guessed at.
  if (!POOLING_MODES.includes(pooling as PoolingMode)) problems.push(`pooling must be one of ${POOLING_MODES.join(', ')} (got ${JSON.stringify(pooling)})`);
  if (typeof normalize !== 'boolean') problems.push(`normalize must be true or false (got ${JSON.stringify(normalize)})`);
  if (!Number.isInteger(max_seq_length) || (max_seq_length as number) < 2) problems.push(`max_seq_length must be an integer ≥ 2 (got ${JSON.stringify(max_seq_length)})`);
  const rolePrompts = typeof prompts === 'object' && prompts !== null && !Array.isArray(prompts) ? (prompts as Record<string, unknown>) : null;
  if (!rolePrompts || typeof rolePrompts.query !== 'string' || typeof rolePrompts.passage !== 'string' || Object.keys(rolePrompts).length !== 2) {
    problems.push(`prompts must be {"query": text, "passage": text} (got ${JSON.stringify(prompts)})`);
  }
  if (train_args !== undefined && !(Array.isArray(train_args) && train_args.every((a) => typeof a === 'string'))) problems.push('train_args must be a list of texts');
  if (data_sha256 !== undefined && !(typeof data_sha256 === 'string' && /^[0-9a-f]{64}$/.test(data_sha256))) problems.push('data_sha256 must be a SHA-256 in hex');
  if (problems.length > 0) throw new Error(`${where}:\n  ${problems.join('\n  ')}`);
  return {
    baseModel: base_model as string,
    ...(typeof revision === 'string' ? { revision } : {}),
    quantization: quantization as 'nf4' | 'f32',
    sentence: { pooling: pooling as PoolingMode, normalize: normalize as boolean, maxLength: max_seq_length as number, prompts: { query: rolePrompts!.query as string, passage: rolePrompts!.passage as string } },
    ...(train_args ? { trainArgs: train_args as string[] } : {}),
    ...(data_sha256 ? { dataSha256: data_sha256 as string } : {}),
  };
}
