/**
 * The engine's buffer pool replayed on sizes alone, for memory estimates: allocations are served by
 * a pooled buffer when the engine would reuse one (reusesPooled) and otherwise create a buffer of
 * the request's size class. Nothing is destroyed during a step, so the bytes of every buffer created
 * are what engine.peakBytes reports; replaying a step's allocations in the model's order counts the
 * buffers that reuse cannot cover (tensors of unlike sizes) as well as those held at once.
 */
import { type BufferFit, reusesPooled, sizeClass } from '../engine/engine.ts';

/** A buffer in the replay is known by its size in bytes: the pool keys its free buffers by size too. */
export type ReplayBuffer = number;

export class PoolReplay {
  /** Free buffers by size. */
  private readonly pool = new Map<number, number>();
  /** Bytes of the buffers created and not trimmed: live + pooled. */
  held = 0;
  /** The largest buffer created. */
  largest = 0;

  /** A buffer for `elements` 4-byte values (the engine stores every dtype in 4 bytes), chosen as Engine.alloc's `fit` chooses. */
  alloc(elements: number, fit: BufferFit = 'pooled'): ReplayBuffer {
    const bytes = Math.ceil(elements) * 4;
    let best = 0;
    for (const [size, count] of this.pool) if (count > 0 && reusesPooled(size, bytes, fit === 'packed') && (best === 0 || size < best)) best = size;
    if (best > 0) {
      this.pool.set(best, this.pool.get(best)! - 1);
      return best;
    }
    const size = fit === 'exact' ? bytes : sizeClass(bytes);
    this.held += size;
    this.largest = Math.max(this.largest, size);
    return size;
  }

  release(...buffers: (ReplayBuffer | null)[]): void {
    for (const size of buffers) if (size !== null) this.pool.set(size, (this.pool.get(size) ?? 0) + 1);
  }

  /** As engine.trimPool: pooled buffers are destroyed. */
  trim(): void {
    for (const [size, count] of this.pool) this.held -= size * count;
    this.pool.clear();
  }
}
