/**
 * Generation with the KV cache on the PyTorch decoder fixtures (Llama with GQA and llama3 rope
 * scaling, Qwen2 biases, Qwen3 q/k norm, Phi-3's split fused projections), without and with a LoRA
 * adapter: every cached step's logits equal the full forward's last-row logits over the sequence so
 * far (1e-4), and the greedy tokens equal both that recomputation's argmax and torch's float64
 * greedy continuation. Sampling: a seed fixes the tokens, a nucleus of one is greedy, stop tokens
 * end generation, and stopping early releases every buffer.
 */
import { describe, expect, it } from 'vitest';
import { DecoderModel } from '../../src/model/decoder.ts';
import { generateTokens } from '../../src/model/decoder-generate.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { argmax } from '../../src/model/decoder-sampling.ts';
import { readDecoderFixture } from '../helpers/decoder-fixture.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/numeric.ts';

async function fixtureDecoder(model: string, adapterCase: string, withAdapter: boolean) {
  const engine = await gpuEngine();
  const fixture = await readDecoderFixture(model, adapterCase);
  const decoder = await DecoderModel.create(engine, fixture.config, fixture.weights, { quantization: fixture.c.base });
  if (withAdapter) decoder.adapters = [createDecoderAdapter(engine, fixture.config, fixture.lora, fixture.adapter, false)];
  // torch's greedy tokens (the same prompt in every case) are of f32 weights: an NF4 case has none.
  const torchTokens = (withAdapter ? fixture.c.greedy : fixture.greedy)?.tokens ?? null;
  return { engine, decoder, prompt: fixture.greedy.prompt, torchTokens };
}

async function collect(tokens: AsyncIterable<number>): Promise<number[]> {
  const out: number[] = [];
  for await (const t of tokens) out.push(t);
  return out;
}

/** The full (non-cached) forward's logits at the last position of `ids`. */
async function fullLastLogits(decoder: DecoderModel, ids: number[]): Promise<Float32Array> {
  const { engine } = decoder;
  const result = decoder.forward({ inputIds: Uint32Array.from(ids), attentionMask: new Float32Array(ids.length).fill(1), batch: 1, seq: ids.length }, { train: false, seed: 0 });
  const logits = decoder.logits(result.hidden);
  const values = await engine.readF32(logits);
  engine.release(logits);
  decoder.releaseForward(result);
  return values.slice(values.length - decoder.config.vocabSize);
}

const CASES: [model: string, adapterCase: string, withAdapter: boolean][] = [
  ['llama', 'f32_all', false],
  ['llama', 'f32_all', true],
  ['qwen2', 'f32_all', true],
  ['qwen3', 'f32_all', false],
  ['qwen3', 'f32_all', true],
  ['phi3', 'f32_o_down', true],
  ['llama', 'nf4_all', true],
];

describe.each(CASES)('generation on %s (%s adapter: %s)', (model, adapterCase, withAdapter) => {
  it('cached steps match the full forward and torch greedy decoding', async () => {
    // torch's 6 tokens (GREEDY_TOKENS of make_decoder_fixture.py), or for NF4 the full forward's own.
    const { engine, decoder, prompt, torchTokens } = await fixtureDecoder(model, adapterCase, withAdapter);
    const steps = 6;
    const expected = torchTokens ?? [];
    const cache = decoder.createKvCache(prompt.length + steps);
    const ids = [...prompt];
    let next = prompt;
    for (let step = 0; step < steps; step++) {
      const hidden = decoder.forwardCached(cache, next);
      const logits = decoder.logits(hidden);
      const cached = await engine.readF32(logits);
      engine.release(hidden, logits);
      const full = await fullLastLogits(decoder, ids);
      expectClose(cached, full, { atol: 1e-4, rtol: 0 }, `logits at step ${step}`);
      if (torchTokens) expect(argmax(full), `full forward's token at step ${step}`).toBe(torchTokens[step]);
      else expected.push(argmax(full));
      ids.push(expected[step]);
      next = [expected[step]];
    }
    decoder.releaseKvCache(cache);
    expect(await collect(generateTokens(decoder, prompt, { maxNewTokens: steps, stopTokenIds: [] }))).toEqual(expected);
    decoder.destroy();
  });
});

describe('sampling and stopping', () => {
  it('a seed fixes the tokens, a tiny nucleus is greedy, stop tokens stop, and stopping early frees the cache', async () => {
    const { engine, decoder, prompt, torchTokens } = await fixtureDecoder('llama', 'f32_all', false);
    const greedy = torchTokens!; // [19, 39, 7, 29, 26, 40]
    const sample = (seed: number, topP = 1) => collect(generateTokens(decoder, prompt, { maxNewTokens: 8, temperature: 2, topP, seed, stopTokenIds: [] }));
    const first = await sample(5);
    expect(await sample(5)).toEqual(first);
    expect(await sample(6)).not.toEqual(first);
    const greedy8 = await collect(generateTokens(decoder, prompt, { maxNewTokens: 8, stopTokenIds: [] }));
    expect(greedy8.slice(0, greedy.length)).toEqual(greedy);
    expect(await sample(5, 1e-6)).toEqual(greedy8);

    // The stop token is yielded last; the default stop set is config.json's eos_token_id.
    expect(await collect(generateTokens(decoder, prompt, { maxNewTokens: 6, stopTokenIds: [greedy[2]] }))).toEqual(greedy.slice(0, 3));
    expect(decoder.config.eosTokenIds).toEqual([2]);

    const before = engine.liveBytes;
    const stream = generateTokens(decoder, prompt, { maxNewTokens: 6, stopTokenIds: [] });
    for await (const token of stream) {
      expect(token).toBe(greedy[0]);
      expect(engine.liveBytes).toBeGreaterThan(before); // the KV cache is held while generating
      break;
    }
    expect(engine.liveBytes).toBe(before);
    decoder.destroy();
  });

  it('refuses bad options and prompts, naming the problem', async () => {
    const { decoder, prompt: fixturePrompt } = await fixtureDecoder('llama', 'f32_all', false);
    const first = (options: Parameters<typeof generateTokens>[2], prompt = fixturePrompt) => generateTokens(decoder, prompt, options).next();
    await expect(first({ maxNewTokens: 0 })).rejects.toThrow(/maxNewTokens must be a positive integer, got 0/);
    await expect(first({ maxNewTokens: 2, temperature: -1 })).rejects.toThrow(/temperature must be a finite number ≥ 0/);
    await expect(first({ maxNewTokens: 2, topP: 0 })).rejects.toThrow(/topP must be in \(0, 1\], got 0/);
    await expect(first({ maxNewTokens: 2 }, [])).rejects.toThrow(/the prompt has no tokens/);
    await expect(first({ maxNewTokens: 2 }, [1, 61])).rejects.toThrow(/prompt token 1 is 61, not a token id below vocab_size 61/);
    await expect(first({ maxNewTokens: 2 }, new Array(33).fill(1))).rejects.toThrow(/the prompt has 33 tokens, more than the model's 32 positions/);
    // A prompt filling every position still gets its one next token.
    expect(await collect(generateTokens(decoder, new Array(32).fill(1), { maxNewTokens: 5, stopTokenIds: [] }))).toHaveLength(1);
    decoder.destroy();
  });
});
