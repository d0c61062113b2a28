import { describe, it } from 'vitest';
import { rmsNormBackwardRef, rmsNormForwardRef } from '../../src/engine/ops/rmsnorm.ref.ts';
import { decoderOpsFixture } from '../helpers/decoder-ops-fixture.ts';
import { dot, expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';

describe('RMSNorm float64 reference', () => {
  it('backward matches central finite differences (x, weight)', () => {
    const width = 7;
    const x = randomArray(1, 3 * width, 2);
    const weight = randomArray(2, width, 0.3).map((v) => v + 1);
    const dy = randomArray(3, 3 * width);
    const eps = 1e-6;
    const loss = (x: ArrayLike<number>, w: ArrayLike<number>) => dot(rmsNormForwardRef(x, w, width, eps).y, dy);
    const back = rmsNormBackwardRef(x, weight, rmsNormForwardRef(x, weight, width, eps).rstd, dy, width);
    const tol = { atol: 1e-7, rtol: 1e-6 };
    expectClose(back.dx, finiteDifferenceGrad((v) => loss(v, weight), x), tol, 'dx');
    expectClose(back.dweight, finiteDifferenceGrad((v) => loss(x, v), weight), tol, 'dweight');
  });

  it.each(decoderOpsFixture.rmsnorm)('matches torch LlamaRMSNorm (committed fixture), $rows x $width eps $eps', (c) => {
    const ref = rmsNormForwardRef(c.x, c.weight, c.width, c.eps);
    const back = rmsNormBackwardRef(c.x, c.weight, ref.rstd, c.dy, c.width);
    const tol = { atol: 1e-12, rtol: 1e-12 };
    expectClose(ref.y, c.y, tol, 'y');
    expectClose(back.dx, c.dx, tol, 'dx');
    expectClose(back.dweight, c.dweight, tol, 'dweight');
  });
});
