import { describe, expect, it } from 'vitest';
import { IGNORE_INDEX } from '../../src/engine/ops/lm-head-loss.ts';
import { lmHeadLossRef } from '../../src/engine/ops/lm-head-loss.ref.ts';
import { decoderOpsFixture } from '../helpers/decoder-ops-fixture.ts';
import { expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';

describe('LM-head cross-entropy float64 reference', () => {
  it.each(decoderOpsFixture.lmHeadLoss)('matches torch F.cross_entropy(ignore_index=-100) (committed fixture), rows=$rows H=$hidden V=$vocab', (c) => {
    const ref = lmHeadLossRef(c.hiddenStates, c.weight, c.targets, c.hidden, IGNORE_INDEX);
    expect(ref.loss).toBeCloseTo(c.loss, 12);
    expectClose(ref.dHidden, c.dHidden, { atol: 1e-12, rtol: 1e-12 }, 'dHidden');
  });

  it('d(hidden) matches central finite differences of the mean loss, ignored rows included', () => {
    const width = 4;
    const hidden = randomArray(1, 3 * width);
    const head = randomArray(2, 9 * width);
    const targets = [5, IGNORE_INDEX, 0];
    const ref = lmHeadLossRef(hidden, head, targets, width, IGNORE_INDEX);
    const fd = finiteDifferenceGrad((h) => lmHeadLossRef(h, head, targets, width, IGNORE_INDEX).loss, hidden);
    expectClose(ref.dHidden, fd, { atol: 1e-8, rtol: 1e-6 }, 'dHidden');
    expectClose(ref.dHidden.subarray(width, 2 * width), new Float64Array(width), { atol: 0, rtol: 0 }, 'ignored row');
  });

  it('with every target ignored the loss and gradient are 0 (not NaN as a mean over none)', () => {
    const ref = lmHeadLossRef(randomArray(3, 4), randomArray(4, 6), [IGNORE_INDEX, IGNORE_INDEX], 2, IGNORE_INDEX);
    expect(ref.loss).toBe(0);
    expect(ref.dHidden.every((g) => g === 0)).toBe(true);
  });
});
