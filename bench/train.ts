// `npm run bench -- train [--quick] [--models minilm_l6,bge_small] [--seqs 16,64] [--reps 3] [--budget-s 120] [--decoder 8x256|none]`
//
// Training pairs/s of QLoRA on random MiniLM-L6- and BGE-small-shaped BERTs with the project's
// Trainer: NF4 base, LoRA r 16, α 32, dropout 0.1 on query and value, InfoNCE over 32 (anchor,
// positive) pairs = 64 sequences per step, AdamW with clipping; each step is recorded into one GPU
// batch and ends with the loss read back. Peak GPU memory (engine.peakBytes over the timed steps)
// is set against estimateTrainingMemory's estimate for the same shape. Node (Dawn) only.
// Each figure is the median of up to --reps timed steps after one untimed warm-up step at the same
// shape; a cell stops repeating once --budget-s is spent (at least one timed step).
// The decoder row (bench/lib/decoder-train.ts): causal-LM steps of --decoder sequences × tokens on a
// 2-layer Qwen2.5-0.5B-width model, tokens/s and peak memory against the estimate; keys decoder_*.
import { loadavg } from 'node:os';
import { createNodeEngine } from '../src/engine/node-gpu.ts';
import { loadModelFiles } from '../src/model/checkpoint.ts';
import { estimateTrainingMemory } from '../src/model/memory.ts';
import { localDirSource } from '../src/model/node-files.ts';
import { ensureBenchModel } from './lib/models.ts';
import { type BenchShape, forwardFlops } from './lib/shapes.ts';
import { BENCH_LORA, benchTrainer } from './lib/training.ts';
import { type DispatchProfile, profileDispatches, profileFigures, profileTable } from './lib/profile.ts';
import { median, processCpuMs, timeRuns } from './lib/stats.ts';
import { markdownTable, mib } from './lib/table.ts';
import { parseBenchOptions } from './lib/options.ts';
import { takeDecoderOption, timeDecoderSteps } from './lib/decoder-train.ts';

const PAIRS = 32;
const WEIGHT_SEED = 5;
const LORA = BENCH_LORA;

interface Row {
  shape: BenchShape;
  seq: number;
  warmupMs: number;
  timesMs: number[];
  /** CPU milliseconds of this process per timed step (Dawn's SwiftShader runs in it). */
  cpuMs: number[];
  peakBytes: number;
  estimateBytes: number;
  loss: number;
  profile: DispatchProfile | null;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

export default async function bench(args: string[]): Promise<void> {
  const decoder = takeDecoderOption(args);
  const { shapes, seqs, timing, profile } = parseBenchOptions(decoder.rest, 120);
  const loadBefore = loadavg()[0];
  const started = performance.now();

  const engine = await createNodeEngine();
  const adapterInfo = engine.adapter;
  log(`GPU: ${adapterInfo.vendor} ${adapterInfo.architecture} ${adapterInfo.description}`);
  const rows: Row[] = [];
  for (const shape of shapes) {
    const files = await loadModelFiles(localDirSource(await ensureBenchModel(shape, WEIGHT_SEED, log)));
    const { trainer, batch: stepBatch, release } = await benchTrainer(engine, files);
    try {
      for (const seq of seqs) {
        const batch = stepBatch(PAIRS, seq);
        engine.trimPool();
        engine.peakBytes = engine.liveBytes;
        let loss = Number.NaN;
        const stepCpuMs: number[] = [];
        const step = async () => {
          const cpuStart = processCpuMs();
          loss = (await trainer.trainStep([batch])).loss;
          stepCpuMs.push(processCpuMs() - cpuStart);
        };
        const t0 = performance.now();
        await step();
        const warmupMs = performance.now() - t0;
        const timesMs = await timeRuns(step, timing.reps, timing.budgetMs);
        const cpuMs = stepCpuMs.slice(1); // without the warm-up
        const estimate = estimateTrainingMemory(files.config, LORA, { sequences: 2 * PAIRS, seq }, { quantization: 'nf4' });
        log(`${shape.key} seq ${seq}: warm-up ${(warmupMs / 1000).toFixed(1)} s, median ${(median(timesMs) / 1000).toFixed(2)} s over ${timesMs.length}, loss ${loss.toFixed(4)}`);
        const peakBytes = engine.peakBytes;
        const kernels = profile ? await profileDispatches(engine, step) : null;
        rows.push({ shape, seq, warmupMs, timesMs, cpuMs, peakBytes, estimateBytes: estimate.total, loss, profile: kernels });
      }
    } finally {
      release();
    }
  }
  const decoderFigures = decoder.shape ? await timeDecoderSteps(engine, decoder.shape, timing, log) : {};
  engine.destroy();

  const pairsPerSecond = (r: Row) => PAIRS / (median(r.timesMs) / 1000);
  // Model FLOPs of a step: linears forward + input gradient (the frozen base gets no weight
  // gradient), attention forward + its four backward products; LoRA and elementwise work left out.
  const gflops = (r: Row) => {
    const { linear, attention } = forwardFlops(r.shape.config, 2 * PAIRS, r.seq);
    return (2 * linear + 3 * attention) / 1e9 / (median(r.timesMs) / 1000);
  };
  console.log(`GPU: ${adapterInfo.vendor} ${adapterInfo.architecture} ${adapterInfo.description}`.trim());
  console.log(
    `InfoNCE, ${PAIRS} pairs (${2 * PAIRS} sequences) per step, NF4 base, LoRA r ${LORA.r} α ${LORA.alpha} dropout ${LORA.dropout} on ${LORA.targetModules.join(',')}; ` +
      `median of up to ${timing.reps} timed steps after a warm-up step (budget ${timing.budgetMs / 1000} s per cell)`,
  );
  console.log(
    markdownTable(
      ['model', 'seq', 'pairs/s', 'median s/step', 'timed steps', 'warm-up s', 'model GFLOP/s', 'CPU s/step', 'peak GPU MiB', 'estimate MiB', 'peak ÷ estimate', 'last loss'],
      rows.map((r) => [
        r.shape.label,
        r.seq,
        pairsPerSecond(r).toFixed(3),
        (median(r.timesMs) / 1000).toFixed(2),
        r.timesMs.length,
        (r.warmupMs / 1000).toFixed(1),
        gflops(r).toFixed(2),
        (median(r.cpuMs) / 1000).toFixed(1),
        mib(r.peakBytes),
        mib(r.estimateBytes),
        (r.peakBytes / r.estimateBytes).toFixed(3),
        r.loss.toFixed(4),
      ]),
    ),
  );
  const result: Record<string, unknown> = {
    name: 'train',
    adapter: adapterInfo.description || `${adapterInfo.vendor} ${adapterInfo.architecture}`,
    pairs_per_step: PAIRS,
    lora: LORA,
    base: 'nf4',
    reps: timing.reps,
    budget_s_per_cell: timing.budgetMs / 1000,
  };
  for (const r of rows) {
    const key = `${r.shape.key}_seq${r.seq}`;
    result[`${key}_pairs_per_s`] = +pairsPerSecond(r).toFixed(4);
    result[`${key}_timed_steps`] = r.timesMs.length;
    result[`${key}_gflop_per_s`] = +gflops(r).toFixed(3);
    result[`${key}_cpu_s_per_step`] = +(median(r.cpuMs) / 1000).toFixed(2);
    result[`${key}_peak_bytes`] = r.peakBytes;
    result[`${key}_estimate_bytes`] = r.estimateBytes;
    result[`${key}_peak_over_estimate`] = +(r.peakBytes / r.estimateBytes).toFixed(4);
  }
  for (const r of rows) {
    if (!r.profile) continue;
    console.log(`\nper-kernel time of one training step, ${r.shape.label}, seq ${r.seq}:`);
    console.log(profileTable(r.profile));
    result[`profile_${r.shape.key}_seq${r.seq}`] = profileFigures(r.profile);
  }
  Object.assign(result, decoderFigures);
  result.load_average_before = +loadBefore.toFixed(2);
  result.load_average_after = +loadavg()[0].toFixed(2);
  result.wall_s = +((performance.now() - started) / 1000).toFixed(1);
  console.log(JSON.stringify(result));
}
