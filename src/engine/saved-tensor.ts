/**
 * Tensors a training forward keeps for its backward, in the step's storage precision: f32 as
 * computed, or f16 packed two per u32 with WGSL's core pack2x16float (ops/half.ts, no device
 * feature), which halves what a step holds between its forward and backward. Backward reads a
 * packed tensor through an f32 temporary that lives only while the op that needs it is recorded,
 * so arithmetic and accumulation stay f32: only the kept values are rounded (11 significant bits).
 * f16's finite range is ±65504; activations of a working encoder stay far inside it.
 */
import type { Engine } from './engine.ts';
import { halfWords, packHalf, unpackHalf } from './ops/half.ts';
import type { StoragePrecision } from './stored.ts';
import { type Tensor, numel } from './tensor.ts';

export type SavedTensor = { readonly tensor: Tensor } | { readonly packed: Tensor; readonly shape: readonly number[] };

/** Keep `t` for backward, taking it over: as it is (f32), or packed to f16 and `t` released. */
export function saveTensor(engine: Engine, t: Tensor, storage: StoragePrecision): SavedTensor {
  if (storage === 'f32') return { tensor: t };
  // Not into a freed f32 buffer twice its size, which would keep the f32 footprint (Engine.alloc).
  const packed = engine.alloc([halfWords(numel(t.shape))], 'u32', false, 'a saved activation', 'packed');
  packHalf(engine, t, packed);
  engine.release(t);
  return { packed, shape: t.shape };
}

/** `use`'s result on f32 views of `saved`: the kept tensors themselves, or unpacked temporaries released once it returns. */
export function withSaved<T>(engine: Engine, saved: readonly SavedTensor[], use: (tensors: Tensor[]) => T): T {
  const temporaries: Tensor[] = [];
  const tensors = saved.map((s) => {
    if ('tensor' in s) return s.tensor;
    const t = engine.alloc(s.shape);
    unpackHalf(engine, s.packed, t);
    temporaries.push(t);
    return t;
  });
  try {
    return use(tensors);
  } finally {
    engine.release(...temporaries);
  }
}

/** Release kept tensors (null: nothing, as Engine.release). */
export function releaseSaved(engine: Engine, ...saved: (SavedTensor | null)[]): void {
  for (const s of saved) if (s) engine.release('tensor' in s ? s.tensor : s.packed);
}
