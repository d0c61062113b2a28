/**
 * The comparisons every GPU-against-PyTorch model test makes on a fixture's batch: sentence
 * embeddings (1e-4 absolute), the InfoNCE loss (1e-5) and every LoRA gradient (1e-3 relative to
 * each tensor's largest |gradient|).
 */
import { expect } from 'vitest';
import type { BertEncoder } from '../../src/model/bert.ts';
import type { GpuAdapter } from '../../src/model/lora.ts';
import type { SentenceEncoder } from '../../src/model/sentence.ts';
import { recordMicroBatch } from '../../src/train/objective.ts';
import { type FixtureModel, fixtureBatch, readFixtureReference } from './fixtures.ts';
import { expectClose } from './numeric.ts';

export interface ReferenceSetup {
  bert: BertEncoder;
  adapter: GpuAdapter;
  encoder: SentenceEncoder;
}

/** Embeddings of the fixture batch without and with the adapter against the reference's. */
export async function expectReferenceEmbeddings({ bert, adapter, encoder }: ReferenceSetup, model: FixtureModel, referenceName: string): Promise<void> {
  const { engine } = bert;
  const ref = readFixtureReference(model, referenceName);
  const { tokens, anchors } = fixtureBatch(model);
  const h = bert.config.hiddenSize;
  for (const withAdapter of [false, true]) {
    bert.adapters = withAdapter ? [adapter] : [];
    const state = encoder.forward(tokens, { train: false, hiddenDropout: 0, seed: 0 });
    const got = await engine.readF32(state.embeddings);
    encoder.release(state);
    const prefix = withAdapter ? 'embedding' : 'embedding_no_adapter';
    expectClose(got.subarray(0, anchors * h), ref.tensors.get(`${prefix}.anchor`)!.data, { atol: 1e-4, rtol: 0 }, `${prefix}.anchor`);
    expectClose(got.subarray(anchors * h), ref.tensors.get(`${prefix}.positive`)!.data, { atol: 1e-4, rtol: 0 }, `${prefix}.positive`);
  }
}

/** The reference's (PEFT's) key of an adapter tensor named `<module>.lora_A` / `.lora_B`. */
export function peftKey(name: string): string {
  const dot = name.lastIndexOf('.');
  return `base_model.model.${name.slice(0, dot)}.${name.slice(dot + 1)}.weight`;
}

/**
 * The loss and every LoRA gradient at the initial adapter; `peftKey` names an adapter tensor as the
 * reference does; `sequencesPerPass` runs the step gradient-cached.
 */
export async function expectReferenceGradients(
  { bert, adapter, encoder }: ReferenceSetup,
  model: FixtureModel,
  referenceName: string,
  peftKey: (name: string) => string,
  sequencesPerPass: number | null = null,
): Promise<void> {
  const { engine } = bert;
  bert.adapters = [adapter];
  const ref = readFixtureReference(model, referenceName);
  const { tokens, anchors } = fixtureBatch(model);
  adapter.zeroGrads();
  const loss = recordMicroBatch(encoder, { kind: 'infonce', scale: 20, symmetric: false }, { tokens, anchors, labels: null }, { train: true, hiddenDropout: 0, seed: 0 }, 1, sequencesPerPass);
  const lossValue = (await engine.readF32(loss))[0];
  expect(Math.abs(lossValue - ref.meta.loss.value)).toBeLessThan(1e-5 * Math.max(1, ref.meta.loss.value));
  const { grads, names } = adapter.parameters();
  expect(names.length).toBe([...ref.tensors.keys()].filter((k) => k.startsWith('grad.')).length);
  for (let i = 0; i < names.length; i++) {
    const expected = ref.tensors.get(`grad.${peftKey(names[i])}`)!.data;
    const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expectClose(await engine.readF32(grads[i]), expected, { atol: 1e-3 * scale, rtol: 0 }, `grad ${names[i]}`);
  }
}
