/**
 * Shared CLI setup for decoder LLMs: which kind of model a --model argument names, and engine +
 * decoder (NF4 or f32 base, bitsandbytes 4-bit checkpoints as they are) for the commands that run one.
 */
import type { Engine } from '../engine/engine.ts';
import { createNodeEngine } from '../engine/node-gpu.ts';
import { type DecoderModelFiles, openDecoderModel } from '../model/decoder-checkpoint.ts';
import { decoderFamilyOf } from '../model/decoder-config.ts';
import { DecoderModel } from '../model/decoder.ts';
import { baseOption } from './encoder.ts';
import { UsageError } from './errors.ts';
import { modelSource } from './model-source.ts';

export type ModelKind = 'encoder' | 'decoder';

/**
 * Whether --model names a decoder LLM (config.json's model_type or architectures name a supported
 * decoder family) or anything else, which the encoder path reads and explains if it cannot.
 */
export async function modelKind(arg: string): Promise<ModelKind> {
  const bytes = await modelSource(arg).read('config.json');
  if (!bytes) return 'encoder';
  let json: { model_type?: unknown; architectures?: unknown };
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return 'encoder';
  }
  const architectures = Array.isArray(json.architectures) ? json.architectures.filter((a): a is string => typeof a === 'string') : [];
  return decoderFamilyOf(json.model_type, architectures) ? 'decoder' : 'encoder';
}

export interface CliDecoder {
  engine: Engine;
  files: DecoderModelFiles;
  model: DecoderModel;
}

/** The decoder named by --model on a new engine, its base in --base precision (layer by layer). */
export async function openDecoder(values: Record<string, unknown>): Promise<CliDecoder> {
  const arg = values.model;
  if (typeof arg !== 'string' || !arg) throw new UsageError('--model is required');
  const quantization = baseOption(values);
  const files = await openDecoderModel(modelSource(arg));
  const engine = await createNodeEngine();
  process.stderr.write(`GPU: ${engine.adapter.vendor || '?'} ${engine.adapter.architecture || ''} ${engine.adapter.description}\n`);
  const model = await DecoderModel.create(engine, files.config, files.weights, { quantization });
  return { engine, files, model };
}
