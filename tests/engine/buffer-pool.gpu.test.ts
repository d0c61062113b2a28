/** The engine's buffer pool hands each buffer to one tensor at a time. */
import { expect, it } from 'vitest';
import { gpuEngine } from '../helpers/gpu.ts';

it('a second release of a tensor is refused, and the pool then gives its buffer to one tensor only', async () => {
  const engine = await gpuEngine();
  const t = engine.alloc([7, 5]);
  const alias = { ...t, shape: [35] };
  engine.release(t);
  expect(() => engine.release(alias)).toThrow('release: a buffer of [35] was released already; releasing it again would give it to two tensors');
  const a = engine.alloc([7, 5]);
  const b = engine.alloc([7, 5]);
  expect(a.buffer).not.toBe(b.buffer);
  engine.release(a, b);
});
