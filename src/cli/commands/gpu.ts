/** `qlora-lab gpu`: describe the WebGPU adapter the CLI will use. */
import { createNodeEngine } from '../../engine/node-gpu.ts';

export const summary = 'print the WebGPU adapter (vendor, architecture, limits, features) as JSON';

export async function run(): Promise<void> {
  const engine = await createNodeEngine();
  console.log(JSON.stringify(engine.adapter, null, 2));
  engine.destroy();
}
