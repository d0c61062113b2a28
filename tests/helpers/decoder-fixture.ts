/**
 * The PyTorch decoder fixtures (tests/fixtures/decoder, made by make_decoder_fixture.py): a model's
 * config and weight reader, its reference tensors and reference.json, the batch, and one case's
 * LoRA adapter (the tensors of the case's target modules, by module name).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BaseQuantization } from '../../src/model/adapted-linear.ts';
import type { DecoderBatch } from '../../src/model/decoder.ts';
import { parseDecoderConfig } from '../../src/model/decoder-config.ts';
import { openDecoderWeights } from '../../src/model/decoder-weights.ts';
import type { HostAdapterTensors } from '../../src/model/lora.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { FIXTURES, readSafetensorsFile } from './fixtures.ts';

/** torch's greedy continuation of the first sequence (no stop token), and how close its choices came to a tie. */
export interface GreedyReference {
  prompt: number[];
  tokens: number[];
  min_margin: number;
}

export interface DecoderCaseMeta {
  base: BaseQuantization;
  target_modules: string[];
  loss: number;
  loss_no_adapter: number;
  /** With the case's adapter; f32 cases only. */
  greedy?: GreedyReference;
}

export async function readDecoderFixture(model: string, name: string) {
  const dir = join(FIXTURES, 'decoder', model);
  const config = parseDecoderConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const weights = await openDecoderWeights(localDirSource(dir), config);
  const reference = readSafetensorsFile(join(dir, 'reference.safetensors'));
  const meta = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
  const c: DecoderCaseMeta = meta.cases[name];
  const ids = reference.get('input_ids')!;
  const [b, t] = ids.shape;
  const batch: DecoderBatch = { inputIds: Uint32Array.from(ids.data), attentionMask: Float32Array.from(reference.get('attention_mask')!.data), batch: b, seq: t };
  // The fixture's adapter covers every linear; the case keeps its targets' tensors (PEFT keys → module names).
  const adapter: HostAdapterTensors = new Map();
  for (const [key, tensor] of reference) {
    const m = /^adapter\.base_model\.model\.(.+)\.(lora_[AB])\.weight$/.exec(key);
    if (m && c.target_modules.some((target) => m[1].endsWith(`.${target}`))) adapter.set(`${m[1]}.${m[2]}`, tensor);
  }
  const lora = { r: meta.lora.r, alpha: meta.lora.lora_alpha, dropout: 0, rslora: false, targetModules: c.target_modules };
  const greedy: GreedyReference = meta.greedy;
  return { config, weights, reference, c, batch, adapter, lora, greedy };
}
