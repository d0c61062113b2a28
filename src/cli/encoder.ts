/** Shared CLI setup: engine + model (+ adapter folders) → a SentenceEncoder. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Engine } from '../engine/engine.ts';
import { createNodeEngine } from '../engine/node-gpu.ts';
import type { StoragePrecision } from '../engine/stored.ts';
import { checkAdapter } from '../model/adapter-check.ts';
import { ADAPTER_SETTINGS_FILE, type AdapterSettings, readAdapterSettings } from '../model/adapter-settings.ts';
import { type BaseQuantization, BertEncoder } from '../model/bert.ts';
import type { ModelFiles } from '../model/checkpoint.ts';
import { GpuAdapter } from '../model/lora.ts';
import { type PeftAdapter, loraConfigOf, readPeftAdapter } from '../model/peft-files.ts';
import { POOLING_MODES } from '../engine/ops/pooling-modes.ts';
import { type Pooling, SentenceEncoder, sentenceOptions } from '../model/sentence.ts';
import { type SentenceConfig, type SentenceOverrides, type SentenceSettings, type SettingOrigins, describeSettings, sentenceSettings } from '../model/sentence-config.ts';
import { hasPooler } from '../model/state-dict.ts';
import { UsageError } from './errors.ts';
import { loadModelArgument } from './model-source.ts';

/** How texts become embeddings (read by encoderOverrides): every command that embeds, and merge, which writes them down. */
export const SENTENCE_OPTIONS = {
  pooling: { type: 'string' },
  normalize: { type: 'boolean' },
  'no-normalize': { type: 'boolean' },
  'max-length': { type: 'string' },
  'prompt-query': { type: 'string' },
  'prompt-passage': { type: 'string' },
} as const;

export const ENCODER_OPTIONS = {
  model: { type: 'string' },
  base: { type: 'string', default: 'nf4' },
  ...SENTENCE_OPTIONS,
} as const;

/** Tokens per text when neither --max-length nor the model folder (sentence_bert_config.json) says. */
const FALLBACK_MAX_LENGTH = 128;

export const ENCODER_USAGE = `  --model <dir|org/name[@revision]>  BERT-family model folder or Hugging Face repo id (required)
  --base nf4|f32                      frozen base precision (default nf4)
  A sentence-transformers folder's choices are the defaults of the next five (printed at start):
  --pooling ${POOLING_MODES.join('|')}
                                      sentence pooling (else the folder's Pooling module, else mean)
  --normalize, --no-normalize         L2-normalise embeddings or not (else a Normalize module, else yes)
  --max-length N                      tokens per text incl. [CLS]/[SEP] (else max_seq_length, else ${FALLBACK_MAX_LENGTH})
  --prompt-query TEXT                 prepended to queries / anchors (else the folder's "query" prompt)
  --prompt-passage TEXT               prepended to passages / positives (else "document", "passage" or "corpus")`;

const OPTION_NAMES = { pooling: '--pooling', normalize: '--normalize/--no-normalize', maxLength: '--max-length', query: '--prompt-query', passage: '--prompt-passage' };

export interface CliEncoder {
  engine: Engine;
  files: ModelFiles;
  bert: BertEncoder;
  encoder: SentenceEncoder;
  /** The adapter folders given, in order, on the GPU. */
  adapters: GpuAdapter[];
  /** Pooling, normalisation, length and prompts in effect. */
  settings: SentenceSettings;
}

/** An adapter folder, read and checked against the base model: any problem is a plain message naming the folder. */
export async function readAdapterDir(dir: string, base: Pick<ModelFiles, 'config' | 'weights'>): Promise<PeftAdapter> {
  const files = await readAdapterFiles(dir);
  const source = `adapter ${dir}`;
  let peft: PeftAdapter;
  try {
    peft = readPeftAdapter(files, base.config);
  } catch (e) {
    throw new UsageError(`${source}: ${(e as Error).message}`);
  }
  try {
    checkAdapter(base.config, peft, source, { pooler: hasPooler(base.weights) });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return peft;
}

/** An adapter folder's two PEFT files; a missing one is a UsageError naming the folder. */
export async function readAdapterFiles(dir: string): Promise<{ 'adapter_config.json': string; 'adapter_model.safetensors': Uint8Array }> {
  const read = (name: string) =>
    readFile(join(dir, name)).catch(() => {
      throw new UsageError(`${dir} has no ${name}: an adapter folder holds adapter_config.json and adapter_model.safetensors`);
    });
  const [config, weights] = await Promise.all([read('adapter_config.json'), read('adapter_model.safetensors')]);
  return { 'adapter_config.json': config.toString('utf8'), 'adapter_model.safetensors': new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength) };
}

export function baseOption(values: Record<string, unknown>): BaseQuantization {
  const base = values.base as BaseQuantization;
  if (base !== 'nf4' && base !== 'f32') throw new UsageError(`--base must be nf4 or f32, got ${String(base)}`);
  return base;
}

function poolingOption(value: unknown): Pooling {
  if (!POOLING_MODES.includes(value as Pooling)) throw new UsageError(`--pooling must be one of ${POOLING_MODES.join(', ')}, got ${String(value)}`);
  return value as Pooling;
}

function maxLengthOption(value: unknown): number {
  const maxLength = Number(value);
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new UsageError(`--max-length must be an integer ≥ 2, got ${String(value)}`);
  return maxLength;
}

/** An adapter folder's qlora_lab.json, or null when it has none (e.g. an adapter trained elsewhere with PEFT). */
export async function readAdapterSettingsFile(dir: string): Promise<AdapterSettings | null> {
  const path = join(dir, ADAPTER_SETTINGS_FILE);
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw new UsageError(`cannot read ${path}: ${e.message}`);
  });
  if (text === null) return null;
  try {
    return readAdapterSettings(text, path);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * The model with the adapter folders on it, in order (the last one trainable when asked). Every
 * folder is read and checked against the model before the GPU is touched.
 */
/** `baseParts`: storage of the base's embeddings and LayerNorms (BaseOptions.baseParts). */
export async function openEncoder(
  values: Record<string, unknown>,
  adapterDirs: string[] = [],
  lastTrainable = false,
  baseParts: StoragePrecision | ((files: ModelFiles, settings: SentenceSettings, engine: Engine) => StoragePrecision) = 'f32',
): Promise<CliEncoder> {
  const model = values.model;
  if (typeof model !== 'string' || !model) throw new UsageError('--model is required');
  const base = baseOption(values);
  const overrides = encoderOverrides(values);
  const files = await loadModelArgument(model);
  const peft: PeftAdapter[] = [];
  for (const dir of adapterDirs) peft.push(await readAdapterDir(dir, files));
  const engine = await createNodeEngine();
  process.stderr.write(`GPU: ${engine.adapter.vendor || '?'} ${engine.adapter.architecture || ''} ${engine.adapter.description}\n`);
  const { settings, origins } = cliSentenceSettings(files.sentence, overrides);
  const parts = typeof baseParts === 'function' ? baseParts(files, settings, engine) : baseParts;
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: base, baseParts: parts });
  const positions = files.config.maxSequenceLength;
  const cut = settings.maxLength > positions ? `; texts are cut at ${positions} tokens, the model's positions (max_position_embeddings)` : '';
  process.stderr.write(`sentence embeddings: ${describeSettings(settings, origins)}${cut}\n`);
  const encoder = new SentenceEncoder(bert, files.tokenizer, sentenceOptions(settings, files.sentence));
  const adapters = peft.map((p, i) => new GpuAdapter(engine, files.config, loraConfigOf(p), p.tensors, lastTrainable && i === peft.length - 1));
  bert.adapters = [...adapters];
  return { engine, files, bert, encoder, adapters, settings };
}

/** The settings in effect: the command line's `overrides` over the model folder's choices, and where each came from. */
export function cliSentenceSettings(folder: SentenceConfig, overrides: SentenceOverrides): { settings: SentenceSettings; origins: SettingOrigins } {
  return sentenceSettings(folder, overrides, FALLBACK_MAX_LENGTH, OPTION_NAMES);
}

/** The sentence settings given on the command line (the rest comes from the model folder). */
export function encoderOverrides(values: Record<string, unknown>): SentenceOverrides {
  const overrides: SentenceOverrides = {};
  const pooling = values.pooling;
  if (pooling !== undefined) overrides.pooling = poolingOption(pooling);
  if (values.normalize && values['no-normalize']) throw new UsageError('--normalize and --no-normalize contradict each other: give one');
  if (values.normalize || values['no-normalize']) overrides.normalize = Boolean(values.normalize);
  if (values['max-length'] !== undefined) overrides.maxLength = maxLengthOption(values['max-length']);
  const query = values['prompt-query'];
  const passage = values['prompt-passage'];
  if (query !== undefined || passage !== undefined) {
    overrides.prompts = { ...(query !== undefined ? { query: String(query) } : {}), ...(passage !== undefined ? { passage: String(passage) } : {}) };
  }
  return overrides;
}
