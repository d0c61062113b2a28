import { describe, expect, it } from 'vitest';
import { ropeInverseFrequencies } from '../../src/engine/ops/rope-frequencies.ts';
import { ropeRef } from '../../src/engine/ops/rope.ref.ts';
import { decoderOpsFixture } from '../helpers/decoder-ops-fixture.ts';
import { dot, expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';

describe('RoPE frequencies and float64 reference', () => {
  it.each(decoderOpsFixture.rope)('match torch (committed fixture), D=$headDim theta=$theta scaling=$scaling', (c) => {
    const scaling = c.scaling && {
      factor: c.scaling.factor,
      lowFreqFactor: c.scaling.low_freq_factor,
      highFreqFactor: c.scaling.high_freq_factor,
      originalMaxPositions: c.scaling.original_max_position_embeddings,
    };
    const invFreq = ropeInverseFrequencies({ headDim: c.headDim, theta: c.theta, scaling: scaling ?? undefined });
    expectClose(invFreq, c.invFreq, { atol: 0, rtol: 1e-14 }, 'invFreq');
    const tol = { atol: 1e-12, rtol: 1e-12 };
    expectClose(ropeRef(c.x, c.positions, invFreq, c.heads), c.y, tol, 'y');
    expectClose(ropeRef(c.dy, c.positions, invFreq, c.heads, true), c.dx, tol, 'dx');
  });

  it('the backward (inverse rotation) matches central finite differences and undoes the forward', () => {
    const heads = 2;
    const invFreq = ropeInverseFrequencies({ headDim: 6, theta: 10_000 });
    const positions = [3, 0, 17];
    const x = randomArray(1, 3 * heads * 6);
    const dy = randomArray(2, x.length);
    const dx = ropeRef(dy, positions, invFreq, heads, true);
    expectClose(dx, finiteDifferenceGrad((v) => dot(ropeRef(v, positions, invFreq, heads), dy), x), { atol: 1e-8, rtol: 1e-7 }, 'dx');
    expectClose(ropeRef(ropeRef(x, positions, invFreq, heads), positions, invFreq, heads, true), x, { atol: 1e-14, rtol: 0 }, 'round trip');
  });

  it('llama3 scaling divides the low frequencies by the factor and keeps the high ones', () => {
    const plain = ropeInverseFrequencies({ headDim: 128, theta: 500_000 });
    const scaled = ropeInverseFrequencies({
      headDim: 128,
      theta: 500_000,
      scaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    });
    expect(scaled[0]).toBe(plain[0]); // wavelength 2π, far below 8192 / 4
    expect(scaled[63]).toBeCloseTo(plain[63] / 8, 20); // wavelength ≈ 2.6e6, above 8192
    const band = scaled.findIndex((f, i) => f !== plain[i] && f !== plain[i] / 8);
    expect(band).toBeGreaterThan(0); // some frequencies are blended
  });

  it('rejects an odd head size and inconsistent scaling, naming the field', () => {
    expect(() => ropeInverseFrequencies({ headDim: 7, theta: 1e4 })).toThrow(/headDim must be a positive even integer, got 7/);
    expect(() => ropeInverseFrequencies({ headDim: 8, theta: 0 })).toThrow(/theta must be a positive number/);
    const scaling = { factor: 8, lowFreqFactor: 4, highFreqFactor: 1, originalMaxPositions: 8192 };
    expect(() => ropeInverseFrequencies({ headDim: 8, theta: 1e4, scaling })).toThrow(/high_freq_factor \(1\) must exceed low_freq_factor \(4\)/);
    expect(() => ropeInverseFrequencies({ headDim: 8, theta: 1e4, scaling: { ...scaling, factor: -1 } })).toThrow(/rope_scaling.factor must be a positive number/);
  });
});
