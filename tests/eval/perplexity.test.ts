import { describe, expect, it } from 'vitest';
import { bootstrap } from '../../src/eval/bootstrap.ts';
import { perplexity, perplexityComparison, perplexityInterval } from '../../src/eval/perplexity.ts';

// Text 1: two tokens at p = 1/2 each; text 2: one token at p = 1/8. Perplexity = (2·2·8)^(1/3) = ∛32.
const LOSSES = [
  { tokens: 2, loss: 2 * Math.log(2) },
  { tokens: 1, loss: Math.log(8) },
];

describe('perplexity', () => {
  it('is exp of the mean loss over every predicted token, texts weighing by their tokens', () => {
    expect(perplexity(LOSSES)).toBeCloseTo(Math.cbrt(32), 12);
    expect(perplexity(LOSSES, [0])).toBeCloseTo(2, 12);
    expect(perplexity(LOSSES, [1, 1])).toBeCloseTo(8, 12);
    expect(perplexity(LOSSES, [])).toBeNaN();
  });

  it('takes its interval from the bootstrap over texts', () => {
    const losses = Array.from({ length: 12 }, (_, i) => ({ tokens: 1 + (i % 4), loss: 0.5 + i / 10 }));
    const options = { resamples: 200, seed: 4 };
    const got = perplexityInterval(losses, options);
    expect(got).toEqual(bootstrap({ units: 12 }, (idx) => perplexity(losses, idx), options));
    expect(got.low).toBeLessThan(got.value);
    expect(got.high).toBeGreaterThan(got.value);
  });

  it('compares base and adapted on paired resamples, and refuses texts that do not match', () => {
    const lower = LOSSES.map((l) => ({ ...l, loss: l.loss / 2 }));
    const m = perplexityComparison(LOSSES, lower, { resamples: 50, seed: 0 });
    expect(m.key).toBe('perplexity');
    expect(m.n).toBe(2);
    expect(m.base.value).toBeCloseTo(Math.cbrt(32), 12);
    expect(m.adapted.value).toBeCloseTo(Math.sqrt(Math.cbrt(32)), 12);
    expect(m.change.value).toBeCloseTo(Math.sqrt(Math.cbrt(32)) - Math.cbrt(32), 12);
    expect(m.change.high).toBeLessThan(0); // every resample's perplexity falls
    expect(m.warning).toBe('only 2 texts, fewer than 10: the value is unstable and the interval narrower than the real uncertainty');
    expect(() => perplexityComparison(LOSSES, [LOSSES[0], { tokens: 2, loss: 1 }])).toThrow('text 2 has 1 predicted tokens under the base and 2 under the adapted model');
    expect(() => perplexityComparison(LOSSES, LOSSES.slice(1))).toThrow('2 base text losses for 1 adapted ones');
  });
});
