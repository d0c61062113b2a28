import { describe, it } from 'vitest';
import type { CausalAttentionShape } from '../../src/engine/ops/causal-attention.ts';
import { causalAttentionBackwardRef, causalAttentionForwardRef } from '../../src/engine/ops/causal-attention.ref.ts';
import { decoderOpsFixture } from '../helpers/decoder-ops-fixture.ts';
import { expectAttentionMatchesTorch } from '../helpers/layer-ops-fixture.ts';
import { dot, expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';

describe('grouped-query causal attention float64 reference', () => {
  it.each(decoderOpsFixture.attention)(
    'matches torch repeat_kv attention with causal and padding masks (committed fixture), B=$batch T=$seq heads=$heads kv=$kvHeads D=$headDim',
    (c) => {
      const shape: CausalAttentionShape = { batch: c.batch, seq: c.seq, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim };
      const ref = causalAttentionForwardRef(c.q, c.k, c.v, c.mask, shape);
      expectAttentionMatchesTorch(ref, causalAttentionBackwardRef(c.q, c.k, c.v, ref.probs, c.dContext, shape), c);
    },
  );

  it('backward matches central finite differences (q, k, v; 2 query heads per K/V head, right and left padding)', () => {
    const shape: CausalAttentionShape = { batch: 2, seq: 4, heads: 4, kvHeads: 2, headDim: 3 };
    const mask = [1, 1, 1, 0, 0, 1, 1, 1]; // right padding, then left padding (row 0 sees no key)
    const q = randomArray(1, 2 * 4 * 4 * 3);
    const k = randomArray(2, 2 * 4 * 2 * 3);
    const v = randomArray(3, k.length);
    const dContext = randomArray(4, q.length);
    const forward = causalAttentionForwardRef(q, k, v, mask, shape);
    const back = causalAttentionBackwardRef(q, k, v, forward.probs, dContext, shape);
    const loss = (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) => dot(causalAttentionForwardRef(q, k, v, mask, shape).context, dContext);
    const tol = { atol: 1e-8, rtol: 1e-6 };
    expectClose(back.dq, finiteDifferenceGrad((x) => loss(x, k, v), q), tol, 'dq');
    expectClose(back.dk, finiteDifferenceGrad((x) => loss(q, x, v), k), tol, 'dk');
    expectClose(back.dv, finiteDifferenceGrad((x) => loss(q, k, x), v), tol, 'dv');
  });

  it('queries placed at an offset against a longer key span (decoding) equal the last rows of the full attention', () => {
    const full: CausalAttentionShape = { batch: 1, seq: 6, heads: 2, kvHeads: 1, headDim: 4 };
    const q = randomArray(5, 6 * 2 * 4);
    const k = randomArray(6, 6 * 4);
    const v = randomArray(7, 6 * 4);
    const mask = [0, 1, 1, 1, 1, 1];
    const whole = causalAttentionForwardRef(q, k, v, mask, full);
    const tail = causalAttentionForwardRef(q.subarray(4 * 8), k, v, mask, { ...full, seq: 2 }, { length: 6, offset: 4 });
    expectClose(tail.context, whole.context.subarray(4 * 8), { atol: 1e-15, rtol: 0 }, 'context');
  });
});
