/** The kernel tests run on the driver the test rig asked for, and the engine reports what kind it is. */
import { expect, it } from 'vitest';
import { gpuEngine } from '../helpers/gpu.ts';

it('runs on the requested driver and flags software adapters', async () => {
  const engine = await gpuEngine();
  const { adapter } = engine;
  const name = `${adapter.vendor} ${adapter.architecture} ${adapter.description}`;
  console.log(`kernel tests run on: ${name}; features: ${adapter.features.join(', ')}`);
  if (process.env.VK_ICD_FILENAMES?.endsWith('lvp_icd.json')) {
    expect(name).toMatch(/llvmpipe/);
    expect(adapter.features).toEqual(expect.arrayContaining(['shader-f16', 'subgroups', 'timestamp-query']));
  }
  expect(adapter.software).toBe(/swiftshader|llvmpipe/i.test(name));
});
