/**
 * Choosing the next token from one row of logits, on the host: greedy (the first largest logit, as
 * torch.argmax), or a draw from softmax(logits / temperature) cut to the top-p nucleus (the fewest
 * most probable tokens whose probability reaches p, as Hugging Face's TopPLogitsWarper). The draw
 * uses the seeded CPU Rng, so a seed gives the same tokens on every machine.
 */
import type { Rng } from '../data/rng.ts';

export interface SamplingOptions {
  /** 0: greedy; above 0: sampling at this temperature. */
  temperature: number;
  /** The nucleus: 1 keeps the whole vocabulary. */
  topP: number;
}

/** Throws a message naming the option unless temperature ≥ 0 and 0 < topP ≤ 1. */
export function checkSamplingOptions(options: SamplingOptions): void {
  const { temperature, topP } = options;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new Error(`temperature must be a finite number ≥ 0 (0: greedy), got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`topP must be in (0, 1], got ${topP}`);
}

/** The index of the first largest value. */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** The next token of `logits` [V] under `options` (greedy when temperature is 0; `rng` is then not drawn from). */
export function pickToken(logits: ArrayLike<number>, options: SamplingOptions, rng: Rng): number {
  if (options.temperature === 0) return argmax(logits);
  const top = logits[argmax(logits)];
  // Probabilities up to a common factor, in float64, the largest being 1 (no overflow).
  const weights = Float64Array.from(logits, (v) => Math.exp((v - top) / options.temperature));
  let total = weights.reduce((a, b) => a + b, 0);
  let order = Array.from(weights.keys());
  let kept = order.length;
  if (options.topP < 1) {
    // Most probable first; ties by index, so a nucleus of one is exactly the greedy token. (Without
    // a nucleus the draw walks the vocabulary in id order: no sort of every token at each step.)
    order = order.sort((a, b) => weights[b] - weights[a] || a - b);
    // Keep each token while the mass before it is below p (Hugging Face removes a token once the mass of the ones above it reaches p).
    let before = 0;
    kept = 0;
    while (kept < order.length && before < options.topP * total) before += weights[order[kept++]];
    total = before;
  }
  let r = rng.next() * total;
  for (let k = 0; k < kept; k++) {
    r -= weights[order[k]];
    if (r < 0) return order[k];
  }
  return order[kept - 1]; // r landed on the total's rounding edge
}
