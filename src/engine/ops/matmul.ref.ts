/** Float64 reference for matmul.wgsl. */
import { gelu } from './activation.ref.ts';
import type { Activation } from './matmul.ts';

export interface MatmulRefOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: ArrayLike<number>;
  activation?: Activation;
  /** Previous contents of out: the result is out + act(alpha·AB + bias). */
  accumulate?: ArrayLike<number>;
  alpha?: number;
  /** b is one matrix shared by every batch. */
  sharedB?: boolean;
}

/**
 * out[b, m, n] = (accumulate[b, m, n] +) act(alpha · Σ_k op(a)[b, m, k] · op(b)[b, k, n] + bias[n]).
 * a is [batch, M, K] (or [batch, K, M] with transA); b is [batch, K, N] (or [batch, N, K] with transB).
 */
export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dims: { batch: number; M: number; N: number; K: number },
  options: MatmulRefOptions = {},
): Float64Array {
  const { batch, M, N, K } = dims;
  const alpha = options.alpha ?? 1;
  const out = new Float64Array(batch * M * N);
  for (let bi = 0; bi < batch; bi++) {
    const aOff = bi * M * K;
    const bOff = options.sharedB ? 0 : bi * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = options.transA ? a[aOff + k * M + m] : a[aOff + m * K + k];
          const bv = options.transB ? b[bOff + n * K + k] : b[bOff + k * N + n];
          s += av * bv;
        }
        let v = alpha * s + (options.bias ? options.bias[n] : 0);
        if (options.activation === 'gelu') v = gelu(v);
        const i = (bi * M + m) * N + n;
        out[i] = (options.accumulate ? options.accumulate[i] : 0) + v;
      }
    }
  }
  return out;
}
