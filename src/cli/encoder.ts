/** Shared CLI setup: engine + model (+ adapter folders) → a SentenceEncoder. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Engine } from '../engine/engine.ts';
import { createNodeEngine } from '../engine/node-gpu.ts';
import { type BaseQuantization, BertEncoder } from '../model/bert.ts';
import type { ModelFiles } from '../model/checkpoint.ts';
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
}

export async function readAdapterDir(dir: string): Promise<PeftAdapter> {
  const read = (name: string) =>
    readFile(join(dir, name)).catch(() => {
      throw new UsageError(`${dir} has no ${name}: an adapter folder holds adapter_config.json and adapter_model.safetensors`);
    });
  const [config, weights] = await Promise.all([read('adapter_config.json'), read('adapter_model.safetensors')]);
  return readPeftAdapter({ 'adapter_config.json': config.toString('utf8'), 'adapter_model.safetensors': new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength) });
}

export function loraConfigOf(peft: PeftAdapter): LoraConfig {
  return { r: peft.config.r, alpha: peft.config.loraAlpha, dropout: peft.config.loraDropout, rslora: peft.config.useRslora, targetModules: peft.config.targetModules, modulePrefix: peft.config.modulePrefix };
}

export async function openEncoder(values: Record<string, unknown>): Promise<CliEncoder> {
  const model = values.model;
  if (typeof model !== 'string' || !model) throw new UsageError('--model is required');
  const base = values.base as BaseQuantization;
  if (base !== 'nf4' && base !== 'f32') throw new UsageError(`--base must be nf4 or f32, got ${String(base)}`);
  const pooling = values.pooling as Pooling;
  if (pooling !== 'mean' && pooling !== 'cls') throw new UsageError(`--pooling must be mean or cls, got ${String(pooling)}`);
  const maxLength = Number(values['max-length']);
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new UsageError(`--max-length must be an integer ≥ 2, got ${String(values['max-length'])}`);
  const files = await loadModelArgument(model);
  const engine = await createNodeEngine();
  process.stderr.write(`GPU: ${engine.adapter.vendor || '?'} ${engine.adapter.architecture || ''} ${engine.adapter.description}\n`);
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: base });
  const encoder = new SentenceEncoder(bert, files.tokenizer, { pooling, normalize: !values['no-normalize'], maxLength });
  return { engine, files, bert, encoder };
}

/** Put adapter folders on the encoder: all frozen, in order (the last one trainable when asked). */
export async function attachAdapterDirs(cli: CliEncoder, dirs: string[], lastTrainable: boolean): Promise<GpuAdapter[]> {
  const adapters: GpuAdapter[] = [];
  for (const [i, dir] of dirs.entries()) {
    const peft = await readAdapterDir(dir);
    const trainable = lastTrainable && i === dirs.length - 1;
    adapters.push(new GpuAdapter(cli.engine, cli.files.config, loraConfigOf(peft), peft.tensors, trainable));
  }
  cli.bert.adapters = adapters;
  return adapters;
}
