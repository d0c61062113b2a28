/**
 * The decoder row of `npm run bench -- train`: causal-LM QLoRA steps (forward, chunked LM-head loss,
 * backward, AdamW on the LoRA of every linear) on a 2-layer model of Qwen2.5-0.5B's width with its
 * full vocabulary, random weights; tokens/s and the peak GPU memory against the estimate.
 */
import type { Engine } from '../../src/engine/engine.ts';
import { estimateDecoderTrainingMemory } from '../../src/model/decoder-memory.ts';
import { DECODER_BENCH_BASE, DECODER_BENCH_LORA, decoderBenchBatch, decoderBenchConfig, decoderBenchTrainer } from './random-decoder.ts';
import { median, timeRuns } from './stats.ts';

export interface DecoderStepShape {
  sequences: number;
  seq: number;
}

/** `--decoder 8x256` (sequences × tokens per step, one micro-batch) or `--decoder none`, taken out of `args`. */
export function takeDecoderOption(args: string[]): { rest: string[]; shape: DecoderStepShape | null } {
  const i = args.indexOf('--decoder');
  if (i < 0) return { rest: args, shape: { sequences: 8, seq: 256 } };
  const value = args[i + 1] ?? '';
  const rest = [...args.slice(0, i), ...args.slice(i + 2)];
  if (value === 'none') return { rest, shape: null };
  const m = /^(\d+)x(\d+)$/.exec(value);
  if (!m || +m[1] < 1 || +m[2] < 2) throw new Error(`--decoder takes SEQUENCESxTOKENS (e.g. 8x256, at least 2 tokens) or none, got "${value}"`);
  return { rest, shape: { sequences: +m[1], seq: +m[2] } };
}

/** Time causal-LM training steps after one warm-up step; figures keyed decoder_qwen25_05b_2l_*. */
export async function timeDecoderSteps(engine: Engine, shape: DecoderStepShape, timing: { reps: number; budgetMs: number }, log: (line: string) => void): Promise<Record<string, unknown>> {
  const config = decoderBenchConfig('qwen25_05b', 2);
  log('decoder: loading a 2-layer Qwen2.5-0.5B-width model (random weights)…');
  const { trainer, release } = await decoderBenchTrainer(engine, config, 41);
  const batch = decoderBenchBatch(config, shape.sequences, shape.seq, 42);
  engine.peakBytes = engine.liveBytes;
  let loss = Number.NaN;
  const step = async () => {
    loss = (await trainer.trainStep([batch])).loss;
  };
  const t0 = performance.now();
  await step();
  const warmupMs = performance.now() - t0;
  const timesMs = await timeRuns(step, timing.reps, timing.budgetMs);
  const peakBytes = engine.peakBytes;
  release();
  const estimate = estimateDecoderTrainingMemory(config, DECODER_BENCH_LORA, shape, DECODER_BENCH_BASE, { maxBindingBytes: engine.maxBindingBytes }).total;
  const tokensPerS = (shape.sequences * shape.seq) / (median(timesMs) / 1000);
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  console.log(
    `decoder, Qwen2.5-0.5B width, 2 layers, ${shape.sequences} × ${shape.seq} tokens per step, NF4 (double quant), LoRA r ${DECODER_BENCH_LORA.r} on every linear: ` +
      `${tokensPerS.toFixed(1)} tokens/s (median of ${timesMs.length} after a ${(warmupMs / 1000).toFixed(1)} s warm-up), peak ${mib(peakBytes)} MiB, estimate ${mib(estimate)} MiB, loss ${loss.toFixed(4)}`,
  );
  const key = 'decoder_qwen25_05b_2l';
  return {
    [`${key}_step`]: `${shape.sequences} × ${shape.seq}`,
    [`${key}_tokens_per_s`]: +tokensPerS.toFixed(2),
    [`${key}_timed_steps`]: timesMs.length,
    [`${key}_peak_bytes`]: peakBytes,
    [`${key}_estimate_bytes`]: estimate,
    [`${key}_peak_over_estimate`]: +(peakBytes / estimate).toFixed(4),
    [`${key}_loss`]: +loss.toFixed(4),
  };
}
