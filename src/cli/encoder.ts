/** Shared CLI setup: engine + model (+ adapter folders) → a SentenceEncoder. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Engine } from '../engine/engine.ts';
import { createNodeEngine } from '../engine/node-gpu.ts';
import { checkAdapter } from '../model/adapter-check.ts';
import { type BaseQuantization, BertEncoder } from '../model/bert.ts';
import type { ModelFiles } from '../model/checkpoint.ts';
import type { BertConfig } from '../model/config.ts';
import { GpuAdapter, type LoraConfig } from '../model/lora.ts';
import { type PeftAdapter, readPeftAdapter } from '../model/peft-files.ts';
import { type Pooling, SentenceEncoder } from '../model/sentence.ts';
import { UsageError } from './errors.ts';
import { loadModelArgument } from './model-source.ts';

export const ENCODER_OPTIONS = {
  model: { type: 'string' },
  base: { type: 'string', default: 'nf4' },
  pooling: { type: 'string', default: 'mean' },
  'no-normalize': { type: 'boolean', default: false },
  'max-length': { type: 'string', default: '128' },
} as const;

export const ENCODER_USAGE = `  --model <dir|org/name[@revision]>  BERT-family model folder or Hugging Face repo id (required)
  --base nf4|f32                      frozen base precision (default nf4)
  --pooling mean|cls                  sentence pooling (default mean)
  --no-normalize                      do not L2-normalise embeddings
  --max-length N                      tokens per text incl. [CLS]/[SEP] (default 128)`;

export interface CliEncoder {
  engine: Engine;
  files: ModelFiles;
  bert: BertEncoder;
  encoder: SentenceEncoder;
  /** The adapter folders given, in order, on the GPU. */
  adapters: GpuAdapter[];
}

/** An adapter folder, read and checked against the base model `bert`: any problem is a plain message naming the folder. */
export async function readAdapterDir(dir: string, bert: BertConfig): Promise<PeftAdapter> {
  const read = (name: string) =>
    readFile(join(dir, name)).catch(() => {
      throw new UsageError(`${dir} has no ${name}: an adapter folder holds adapter_config.json and adapter_model.safetensors`);
    });
  const [config, weights] = await Promise.all([read('adapter_config.json'), read('adapter_model.safetensors')]);
  const source = `adapter ${dir}`;
  let peft: PeftAdapter;
  try {
    peft = readPeftAdapter({ 'adapter_config.json': config.toString('utf8'), 'adapter_model.safetensors': new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength) }, bert);
  } catch (e) {
    throw new UsageError(`${source}: ${(e as Error).message}`);
  }
  try {
    checkAdapter(bert, peft, source);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return peft;
}

export function loraConfigOf(peft: PeftAdapter): LoraConfig {
  return { r: peft.config.r, alpha: peft.config.loraAlpha, dropout: peft.config.loraDropout, rslora: peft.config.useRslora, targetModules: peft.config.targetModules };
}

/**
 * The model with the adapter folders on it, in order (the last one trainable when asked). Every
 * folder is read and checked against the model before the GPU is touched.
 */
export async function openEncoder(values: Record<string, unknown>, adapterDirs: string[] = [], lastTrainable = false): Promise<CliEncoder> {
  const model = values.model;
  if (typeof model !== 'string' || !model) throw new UsageError('--model is required');
  const base = values.base as BaseQuantization;
  if (base !== 'nf4' && base !== 'f32') throw new UsageError(`--base must be nf4 or f32, got ${String(base)}`);
  const pooling = values.pooling as Pooling;
  if (pooling !== 'mean' && pooling !== 'cls') throw new UsageError(`--pooling must be mean or cls, got ${String(pooling)}`);
  const maxLength = Number(values['max-length']);
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new UsageError(`--max-length must be an integer ≥ 2, got ${String(values['max-length'])}`);
  const files = await loadModelArgument(model);
  const peft: PeftAdapter[] = [];
  for (const dir of adapterDirs) peft.push(await readAdapterDir(dir, files.config));
  const engine = await createNodeEngine();
  process.stderr.write(`GPU: ${engine.adapter.vendor || '?'} ${engine.adapter.architecture || ''} ${engine.adapter.description}\n`);
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: base });
  const encoder = new SentenceEncoder(bert, files.tokenizer, { pooling, normalize: !values['no-normalize'], maxLength });
  const adapters = peft.map((p, i) => new GpuAdapter(engine, files.config, loraConfigOf(p), p.tensors, lastTrainable && i === peft.length - 1));
  bert.adapters = [...adapters];
  return { engine, files, bert, encoder, adapters };
}
