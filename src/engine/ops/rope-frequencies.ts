/**
 * Rotary position embedding frequencies, computed on the CPU in float64: inv_freq[i] = θ^(−2i/D)
 * for the D/2 rotated pairs, with Llama 3's "llama3" rope_scaling adjustment when given
 * (Hugging Face's _compute_llama3_parameters): wavelengths longer than the original context ÷
 * low_freq_factor are divided by `factor`, shorter than the original context ÷ high_freq_factor kept,
 * and the band between blended linearly in original_context / wavelength.
 */
import { ShapeError } from '../errors.ts';

/** config.json's rope_scaling with rope_type "llama3", in camelCase. */
export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

export interface RopeConfig {
  headDim: number;
  /** config.json's rope_theta. */
  theta: number;
  scaling?: Llama3RopeScaling;
}

function expectPositive(name: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) throw new ShapeError(`RoPE: ${name} must be a positive number, got ${value}`);
}

export function ropeInverseFrequencies(config: RopeConfig): Float64Array {
  const { headDim, theta, scaling } = config;
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
    throw new ShapeError(`RoPE: headDim must be a positive even integer, got ${headDim}`);
  }
  expectPositive('theta', theta);
  const invFreq = Float64Array.from({ length: headDim / 2 }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  if (!scaling) return invFreq;
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
  for (const [name, value] of Object.entries(scaling)) expectPositive(`rope_scaling.${name}`, value);
  if (!(highFreqFactor > lowFreqFactor)) {
    throw new ShapeError(`RoPE: rope_scaling.high_freq_factor (${highFreqFactor}) must exceed low_freq_factor (${lowFreqFactor})`);
  }
  const lowFreqWavelength = originalMaxPositions / lowFreqFactor;
  const highFreqWavelength = originalMaxPositions / highFreqFactor;
  return invFreq.map((f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength > lowFreqWavelength) return f / factor;
    if (wavelength < highFreqWavelength) return f;
    const smooth = (originalMaxPositions / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/**
 * The cos/sin table the kernels read, [positions, D]: row p holds cos(p·inv_freq[i]) for i < D/2,
 * then sin(p·inv_freq[i]); angles and their cos/sin in float64, rounded once to f32.
 */
export function ropeTableValues(invFreq: ArrayLike<number>, positions: number): Float32Array {
  const half = invFreq.length;
  const table = new Float32Array(positions * 2 * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * invFreq[i];
      table[p * 2 * half + i] = Math.cos(angle);
      table[p * 2 * half + half + i] = Math.sin(angle);
    }
  }
  return table;
}
