// `npm run bench -- tsne [--sizes 1000,5000] [--timed 1000,100]`: seconds per 1,000 t-SNE iterations,
// GPU (this project, WebGPU: SwiftShader here, a real GPU when present) against DruidJS's exact t-SNE
// on the CPU (its WebAssembly step), same data, perplexity, learning rate and exaggeration schedule.
// Why DruidJS (@saehrimnir/druidjs): of the npm t-SNE packages it is the one still maintained
// (releases into 2026; tsne-js and @keckelt/tsne are re-publishes of 2016-era code), it is the same
// exact algorithm (O(N²) gradient, tsne.m's exaggeration/momentum/gains schedule), and its step is
// compiled to WebAssembly, so the comparison is against the fastest CPU t-SNE npm offers, not a slow one.
// It uses dense P (all N² affinities) where we keep 3·perplexity neighbours; the timed part, the
// gradient iterations, is O(N²) on both sides.
// `--timed` is how many iterations are timed at each size; the figure is scaled to 1,000.
// Besides wall time, the process CPU time of each side is printed: on a shared machine the wall
// ratio swings with other load, the CPU-time ratio much less (SwiftShader runs on all cores, DruidJS
// on one).
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { TSNE } from '@saehrimnir/druidjs';
import { createNodeEngine } from '../src/engine/node-gpu.ts';
import { GpuTsne, planTsne } from '../src/eval/tsne.ts';
import { gaussianClusters } from '../src/eval/synthetic.ts';

const PERPLEXITY = 30;
const DIMENSIONS = 50;
const CLUSTERS = 10;

/** Process CPU seconds (all threads) since `since`. */
function cpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

function list(value: string, name: string): number[] {
  const items = value.split(',').map(Number);
  if (items.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`--${name} must be a comma-separated list of positive integers, got ${value}`);
  return items;
}

export default async function bench(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { sizes: { type: 'string', default: '1000,5000' }, timed: { type: 'string', default: '1000,100' } } });
  const sizes = list(values.sizes!, 'sizes');
  const timed = list(values.timed!, 'timed');
  if (timed.length !== sizes.length) throw new Error('--timed needs one count per size');

  const engine = await createNodeEngine();
  console.log(`load average at start: ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores`);
  console.log(`GPU: ${engine.adapter.vendor} ${engine.adapter.architecture} ${engine.adapter.description}`.trim());
  console.log(`data: ${CLUSTERS} Gaussian clusters in ${DIMENSIONS}-D; perplexity ${PERPLEXITY}; 2-D map`);
  console.log('| N | timed its | GPU s/1000 its | CPU (druidjs) s/1000 its | CPU ÷ GPU | GPU cpu-s/1000 | CPU cpu-s/1000 | cpu-s ratio | GPU prep s | CPU prep s |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  const result: Record<string, number | string> = { name: 'tsne', perplexity: PERPLEXITY, dims: 2, cpu_library: '@saehrimnir/druidjs' };
  for (const [index, n] of sizes.entries()) {
    const iterations = timed[index];
    const { vectors } = gaussianClusters(n, n, DIMENSIONS, CLUSTERS);

    let start = performance.now();
    const plan = planTsne(vectors, { perplexity: PERPLEXITY });
    const gpuPrep = (performance.now() - start) / 1000;
    const gpu = new GpuTsne(engine, plan);
    gpu.step(1); // compile pipelines outside the timing
    await gpu.positions();
    start = performance.now();
    let cpu0 = process.cpuUsage();
    gpu.step(iterations);
    await gpu.positions();
    const gpuPer1000 = ((performance.now() - start) / 1000) * (1000 / iterations);
    const gpuCpuPer1000 = cpuSeconds(cpu0) * (1000 / iterations);
    gpu.release();

    const rows = vectors.map((v) => Array.from(v));
    start = performance.now();
    const cpu = new TSNE(rows, { perplexity: PERPLEXITY, epsilon: plan.options.learningRate, d: 2, seed: 1 });
    cpu.init();
    const cpuPrep = (performance.now() - start) / 1000;
    start = performance.now();
    cpu0 = process.cpuUsage();
    for (const _ of cpu.generator(iterations));
    const cpuPer1000 = ((performance.now() - start) / 1000) * (1000 / iterations);
    const cpuCpuPer1000 = cpuSeconds(cpu0) * (1000 / iterations);

    const ratio = cpuPer1000 / gpuPer1000;
    const cpuRatio = cpuCpuPer1000 / gpuCpuPer1000;
    console.log(
      `| ${n} | ${iterations} | ${gpuPer1000.toFixed(2)} | ${cpuPer1000.toFixed(2)} | ${ratio.toFixed(2)} | ${gpuCpuPer1000.toFixed(2)} | ${cpuCpuPer1000.toFixed(2)} | ${cpuRatio.toFixed(2)} | ${gpuPrep.toFixed(2)} | ${cpuPrep.toFixed(2)} |`,
    );
    result[`gpu_s_per_1000_its_${n}`] = +gpuPer1000.toFixed(3);
    result[`cpu_s_per_1000_its_${n}`] = +cpuPer1000.toFixed(3);
    result[`ratio_vs_cpu_${n}`] = +ratio.toFixed(3);
    result[`cpu_time_ratio_${n}`] = +cpuRatio.toFixed(3);
    result[`timed_iterations_${n}`] = iterations;
  }
  engine.destroy();
  console.log(JSON.stringify(result));
}
