import { describe, it } from 'vitest';
import { interleaveGateUp, swigluBackwardRef, swigluForwardRef } from '../../src/engine/ops/swiglu.ref.ts';
import { decoderOpsFixture } from '../helpers/decoder-ops-fixture.ts';
import { dot, expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';

describe('SwiGLU float64 reference', () => {
  it('backward matches central finite differences (gate, up)', () => {
    const gate = randomArray(1, 12, 3);
    const up = randomArray(2, 12);
    const dOut = randomArray(3, 12);
    const back = swigluBackwardRef(gate, up, dOut);
    const tol = { atol: 1e-8, rtol: 1e-7 };
    expectClose(back.dGate, finiteDifferenceGrad((g) => dot(swigluForwardRef(g, up), dOut), gate), tol, 'dGate');
    expectClose(back.dUp, finiteDifferenceGrad((u) => dot(swigluForwardRef(gate, u), dOut), up), tol, 'dUp');
  });

  it.each(decoderOpsFixture.swiglu)('matches torch silu(gate)·up and the Phi-3 chunk(2) gradient (committed fixture), $rows x $inter', (c) => {
    const tol = { atol: 1e-12, rtol: 1e-12 };
    const back = swigluBackwardRef(c.gate, c.up, c.dOut);
    expectClose(swigluForwardRef(c.gate, c.up), c.out, tol, 'out');
    expectClose(back.dGate, c.dGate, tol, 'dGate');
    expectClose(back.dUp, c.dUp, tol, 'dUp');
    expectClose(interleaveGateUp(back.dGate, back.dUp, c.inter), c.dGateUp, tol, 'dGateUp');
  });
});
