/**
 * The GPU decoder + LoRA against PyTorch (tests/fixtures/decoder, float64 references of a hand-written
 * LlamaForCausalLM): hidden states after the final norm without and with the adapter (1e-4, real
 * tokens), the causal-LM loss (1e-4) and every LoRA gradient (1e-3 relative to each tensor's largest
 * |gradient|). Llama with llama3 rope scaling and an untied head (LoRA on q, v and on every linear;
 * f32 and NF4 base), Qwen2 (q/k/v biases, tied head) and Qwen3 (per-head q/k RMSNorm, head_dim ≠ hidden/heads) and Phi-3 (fused qkv_proj and gate_up_proj split at
 * load; LoRA on o_proj and down_proj).
 */
import { describe, expect, it } from 'vitest';
import { type DecoderBatch, DecoderModel, causalLmTargets } from '../../src/model/decoder.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { readDecoderFixture } from '../helpers/decoder-fixture.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/numeric.ts';

const CASES: [model: string, reference: string][] = [
  ['llama', 'f32_qv'],
  ['llama', 'f32_all'],
  ['llama', 'nf4_all'],
  ['qwen2', 'f32_all'],
  ['qwen3', 'f32_all'],
  ['phi3', 'f32_o_down'],
];

/** Vocabulary rows per LM-head chunk: 61 tokens in 4 chunks. */
const CHUNK = 16;

/** Values of a [B, T, H] tensor at the real tokens only. */
function realTokens(values: ArrayLike<number>, batch: DecoderBatch): number[] {
  const h = values.length / batch.attentionMask.length;
  const out: number[] = [];
  batch.attentionMask.forEach((m, row) => {
    if (m !== 0) for (let j = 0; j < h; j++) out.push(values[row * h + j]);
  });
  return out;
}

describe.each(CASES)('decoder %s, %s vs PyTorch', (model, name) => {
  it('hidden states, causal-LM loss and every LoRA gradient match', async () => {
    const engine = await gpuEngine();
    const { config, weights, reference, c, batch, adapter, lora } = await readDecoderFixture(model, name);
    const decoder = await DecoderModel.create(engine, config, weights, { quantization: c.base });
    const targets = causalLmTargets(batch);

    const plain = decoder.forward(batch, { train: false, seed: 0 });
    const plainLoss = decoder.loss(plain, targets, CHUNK);
    const plainHidden = await engine.readF32(plain.hidden);
    expectClose(realTokens(plainHidden, batch), realTokens(reference.get(`${name}.no_adapter.hidden`)!.data, batch), { atol: 1e-4, rtol: 0 }, 'hidden, no adapter');
    expect(Math.abs((await engine.readF32(plainLoss.loss))[0] - c.loss_no_adapter), 'loss, no adapter').toBeLessThan(1e-4);
    decoder.releaseLoss(plainLoss);
    decoder.releaseForward(plain);

    const gpuAdapter = createDecoderAdapter(engine, config, lora, adapter, true);
    decoder.adapters = [gpuAdapter];
    const result = decoder.forward(batch, { train: true, seed: 0 });
    const loss = decoder.loss(result, targets, CHUNK);
    expectClose(realTokens(await engine.readF32(result.hidden), batch), realTokens(reference.get(`${name}.hidden`)!.data, batch), { atol: 1e-4, rtol: 0 }, 'hidden');
    expect(Math.abs((await engine.readF32(loss.loss))[0] - c.loss), 'loss').toBeLessThan(1e-4);
    decoder.backwardLoss(result, loss, CHUNK);

    let compared = 0;
    for (const [module, grads] of gpuAdapter.grads) {
      for (const [half, tensor] of [['A', grads.da], ['B', grads.db]] as const) {
        const expected = reference.get(`${name}.grad.base_model.model.${module}.lora_${half}.weight`)!.data;
        const largest = expected.reduce((mx, v) => Math.max(mx, Math.abs(v)), 0);
        expect(largest, `${module}.lora_${half} has a gradient`).toBeGreaterThan(0);
        expectClose(await engine.readF32(tensor), expected, { atol: 1e-3 * largest, rtol: 0 }, `grad ${module}.lora_${half}`);
        compared++;
      }
    }
    const perLayer = c.target_modules.length * 2;
    expect(compared).toBe(perLayer * config.numHiddenLayers);
    decoder.releaseLoss(loss);
    decoder.releaseForward(result);
    decoder.destroy();
  });
});
