/** Float64 reference for swiglu.wgsl: gate, up, out elementwise (any matching length). */

export interface SwigluBackwardRef {
  dGate: Float64Array;
  dUp: Float64Array;
}

function sigmoid(g: number): number {
  return 1 / (1 + Math.exp(-g));
}

export function swigluForwardRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: gate.length }, (_, i) => gate[i] * sigmoid(gate[i]) * up[i]);
}

export function swigluBackwardRef(gate: ArrayLike<number>, up: ArrayLike<number>, dOut: ArrayLike<number>): SwigluBackwardRef {
  const dGate = new Float64Array(gate.length);
  const dUp = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    const s = sigmoid(g);
    dGate[i] = dOut[i] * up[i] * s * (1 + g * (1 - s));
    dUp[i] = dOut[i] * g * s;
  }
  return { dGate, dUp };
}

/** Phi-3's gate_up layout [rows, 2·inter] from separate gate and up [rows, inter] (or their gradients). */
export function interleaveGateUp(gate: ArrayLike<number>, up: ArrayLike<number>, inter: number): Float64Array {
  const rows = gate.length / inter;
  const out = new Float64Array(2 * gate.length);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < inter; j++) {
      out[2 * r * inter + j] = gate[r * inter + j];
      out[(2 * r + 1) * inter + j] = up[r * inter + j];
    }
  }
  return out;
}
