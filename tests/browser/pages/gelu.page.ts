import { createEngine } from '../../../src/engine/engine.ts';
import { geluBackward, geluForward } from '../../../src/engine/ops/activation.ts';
import { geluBackwardRef, geluForwardRef } from '../../../src/engine/ops/activation.ref.ts';
import { report } from './report.ts';

report(async () => {
  const engine = await createEngine(navigator.gpu);
  const n = 1025;
  const xs = Float32Array.from({ length: n }, (_, i) => -6 + (12 * i) / (n - 1));
  const dys = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
  const x = engine.upload(xs, [n]);
  const dy = engine.upload(dys, [n]);
  const y = engine.alloc([n]);
  const dx = engine.alloc([n]);
  geluForward(engine, x, y);
  geluBackward(engine, x, dy, dx);
  const gy = await engine.readF32(y);
  const gdx = await engine.readF32(dx);
  const ey = geluForwardRef(xs);
  const edx = geluBackwardRef(xs, dys);
  let errY = 0;
  let errDx = 0;
  for (let i = 0; i < n; i++) {
    errY = Math.max(errY, Math.abs(gy[i] - ey[i]));
    errDx = Math.max(errDx, Math.abs(gdx[i] - edx[i]));
  }
  return { errY, errDx, adapter: engine.adapter };
});
