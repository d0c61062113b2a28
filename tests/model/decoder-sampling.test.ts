/** Next-token choice on the host: greedy, temperature, the top-p nucleus (as Hugging Face's), and seeded draws. */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/data/rng.ts';
import { argmax, checkSamplingOptions, pickToken } from '../../src/model/decoder-sampling.ts';

/** How often each token is drawn in `n` draws from one seeded stream. */
function frequencies(logits: number[], options: { temperature: number; topP: number }, n = 20000): number[] {
  const rng = new Rng(11);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[pickToken(logits, options, rng)]++;
  return counts.map((c) => c / n);
}

describe('pickToken', () => {
  it('greedy takes the first largest logit and draws nothing from the stream', () => {
    const rng = new Rng(3);
    expect(pickToken([0.5, 2, -1, 2], { temperature: 0, topP: 1 }, rng)).toBe(1);
    expect(argmax([3, 1, 3])).toBe(0);
    expect(rng.nextU32()).toBe(new Rng(3).nextU32());
  });

  it('samples softmax(logits / temperature)', () => {
    const logits = [0, Math.log(2), Math.log(4), Math.log(1)]; // probabilities 1/8, 2/8, 4/8, 1/8
    frequencies(logits, { temperature: 1, topP: 1 }).forEach((f, i) => expect(f).toBeCloseTo([1, 2, 4, 1][i] / 8, 1.5));
    // Temperature 0.5 squares the odds: 1, 4, 16, 1 over 22.
    frequencies(logits, { temperature: 0.5, topP: 1 }).forEach((f, i) => expect(f).toBeCloseTo([1, 4, 16, 1][i] / 22, 1.5));
  });

  it('keeps the top-p nucleus: tokens while the mass above them is below p', () => {
    const logits = [Math.log(0.2), Math.log(0.5), Math.log(0.3)];
    // p = 0.6: 0.5 (nothing above), 0.3 (0.5 above); 0.2 has 0.8 above and is cut. Odds 5 : 3.
    const f = frequencies(logits, { temperature: 1, topP: 0.6 });
    expect(f[0]).toBe(0);
    expect(f[1]).toBeCloseTo(5 / 8, 1.5);
    // p = 0.5: the top token alone (Hugging Face removes the rest once the mass above reaches p).
    expect(frequencies(logits, { temperature: 1, topP: 0.5 }, 200)).toEqual([0, 1, 0]);
  });

  it('a nucleus of one is the greedy token, ties included', () => {
    const rng = new Rng(1);
    for (const logits of [[1, 4, 4, 2], [9, 9], [-3, -1, -2]]) expect(pickToken(logits, { temperature: 1.3, topP: 1e-6 }, rng)).toBe(argmax(logits));
  });

  it('repeats its draws for a seed and differs for another', () => {
    const logits = Array.from({ length: 50 }, (_, i) => Math.sin(i));
    const draws = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 20 }, () => pickToken(logits, { temperature: 1, topP: 0.9 }, rng));
    };
    expect(draws(4)).toEqual(draws(4));
    expect(draws(5)).not.toEqual(draws(4));
  });

  it('refuses a negative temperature and a nucleus outside (0, 1]', () => {
    expect(() => checkSamplingOptions({ temperature: -0.1, topP: 1 })).toThrow(/temperature must be a finite number ≥ 0 \(0: greedy\), got -0.1/);
    expect(() => checkSamplingOptions({ temperature: Number.POSITIVE_INFINITY, topP: 1 })).toThrow(/temperature/);
    expect(() => checkSamplingOptions({ temperature: 1, topP: 1.5 })).toThrow(/topP must be in \(0, 1\], got 1.5/);
    expect(() => checkSamplingOptions({ temperature: 1, topP: Number.NaN })).toThrow(/topP must be in \(0, 1\], got NaN/);
  });
});
