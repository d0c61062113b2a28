/**
 * Shared CLI setup for decoder LLMs: which kind of model a --model argument names, adapter folders,
 * and engine + decoder (NF4 or f32 base, bitsandbytes 4-bit checkpoints as they are) + adapters for
 * the commands that run one.
 */
import type { Engine } from '../engine/engine.ts';
import type { StoragePrecision } from '../engine/stored.ts';
import { createNodeEngine } from '../engine/node-gpu.ts';
import { type DecoderModelFiles, openDecoderModel } from '../model/decoder-checkpoint.ts';
import { type DecoderConfig, type ModelKind, configModelKind } from '../model/decoder-config.ts';
import { createDecoderAdapter } from '../model/decoder-lora.ts';
import { readDecoderPeftAdapter } from '../model/decoder-peft.ts';
import { DecoderModel } from '../model/decoder.ts';
import type { GpuLoraModules, HostAdapterTensors, LoraConfig } from '../model/lora.ts';
import { type PeftAdapter, loraConfigOf } from '../model/peft-files.ts';
import { baseOption, readAdapterFiles } from './encoder.ts';
import { UsageError } from './errors.ts';
import { modelSource } from './model-source.ts';

/**
 * Whether --model names a decoder LLM (config.json's model_type or architectures name a supported
 * decoder family), anything else, or a model whose config.json cannot be read or parsed (a missing
 * folder, an unreachable Hub): commands that take either kind go the encoder's way then, which
 * explains the problem; decoder-only commands open it as a decoder, which explains it too.
 */
export async function modelKind(arg: string): Promise<ModelKind> {
  const bytes = await modelSource(arg)
    .read('config.json')
    .catch(() => null);
  return configModelKind(bytes);
}

export interface CliDecoder {
  engine: Engine;
  files: DecoderModelFiles;
  model: DecoderModel;
  /** The adapter folders given, in order, on the GPU (also model.adapters). */
  adapters: GpuLoraModules[];
}

/** --model's value in a command's arguments (`--model X` or `--model=X`), for choosing the encoder or decoder path before parsing. */
export function modelArgument(args: readonly string[]): string | undefined {
  const at = args.findIndex((a) => a === '--model' || a.startsWith('--model='));
  if (at < 0) return undefined;
  return args[at].startsWith('--model=') ? args[at].slice('--model='.length) : args[at + 1];
}

/** An adapter folder read for this decoder and checked against it (names, rank, shapes, finite values); problems name the folder. */
export async function readDecoderAdapterDir(dir: string, config: DecoderConfig): Promise<PeftAdapter> {
  const files = await readAdapterFiles(dir);
  try {
    return readDecoderPeftAdapter(files, config);
  } catch (e) {
    throw new UsageError(`adapter ${dir}: ${(e as Error).message}`);
  }
}

export interface DecoderAdapterOptions {
  /** The last folder's adapter gets gradients. */
  lastTrainable?: boolean;
  /** false: every adapter runs without LoRA dropout (check-grads compares with PyTorch's eval mode). */
  loraDropout?: boolean;
  /** Checks of the command's options against the model, run before the GPU starts (a UsageError stops there). */
  check?: (files: DecoderModelFiles) => void;
  /** A new trainable adapter on top of the folders', made for the model's config before the GPU starts (train). */
  newAdapter?: (config: DecoderConfig) => { lora: LoraConfig; tensors: HostAdapterTensors };
  /** The storage of the embeddings and head, chosen once the device's limits are known and before the base is built (train's memory plan). */
  baseParts?: (files: DecoderModelFiles, engine: Engine) => StoragePrecision;
}

/** Tokens per text: --max-length (an integer ≥ 2, within the model's positions), else `fallback` cut to the positions. */
export function maxLengthFor(config: DecoderConfig, values: Record<string, unknown>, fallback: number): number {
  const positions = config.maxSequenceLength;
  if (values['max-length'] === undefined) return Math.min(fallback, positions);
  const n = Number(values['max-length']);
  if (!Number.isInteger(n) || n < 2) throw new UsageError(`--max-length must be an integer ≥ 2, got ${String(values['max-length'])}`);
  if (n > positions) throw new UsageError(`--max-length ${n} exceeds the model's ${positions} positions`);
  return n;
}

/**
 * The decoder named by --model on a new engine, its base in --base precision (layer by layer), with
 * the adapter folders on it in order (the last one trainable when asked; LoRA dropout off when
 * asked). Every folder is read and checked against the model before the GPU is touched.
 */
export async function openDecoder(values: Record<string, unknown>, adapterDirs: string[] = [], options: DecoderAdapterOptions = {}): Promise<CliDecoder> {
  const { lastTrainable = false, loraDropout = true } = options;
  const arg = values.model;
  if (typeof arg !== 'string' || !arg) throw new UsageError('--model is required');
  const quantization = baseOption(values);
  const files = await openDecoderModel(modelSource(arg));
  const peft: PeftAdapter[] = [];
  for (const dir of adapterDirs) peft.push(await readDecoderAdapterDir(dir, files.config));
  options.check?.(files);
  const fresh = options.newAdapter?.(files.config);
  const engine = await createNodeEngine();
  process.stderr.write(`GPU: ${engine.adapter.vendor || '?'} ${engine.adapter.architecture || ''} ${engine.adapter.description}\n`);
  const model = await DecoderModel.create(engine, files.config, files.weights, { quantization, baseParts: options.baseParts?.(files, engine) });
  // Without loraDropout (check-grads) the adapters run as PEFT's in eval mode, whatever lora_dropout their config has.
  const adapters = peft.map((p, i) => {
    const lora = loraConfigOf(p);
    return createDecoderAdapter(engine, files.config, loraDropout ? lora : { ...lora, dropout: 0 }, p.tensors, lastTrainable && i === peft.length - 1);
  });
  if (fresh) adapters.push(createDecoderAdapter(engine, files.config, fresh.lora, fresh.tensors, true));
  model.adapters = [...adapters];
  return { engine, files, model, adapters };
}
