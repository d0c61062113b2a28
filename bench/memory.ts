// `npm run bench -- memory [--reps 3] [--cached-layers 12] [--per-pass 8] [--measure-pairs 32] [--measure-seq 128]
//   [--decoder-seqs N] [--decoder-seq 256] [--skip measured,timing,decoder]`
//
// GPU memory of training under the automatic plan (src/model/memory.ts), and what the exact
// bounded-memory step costs:
// - est_gib_biolinkbert_large, est_gib_bert_base: the planned estimate for BioLinkBERT-large's and
//   BERT-base's shapes, NF4 base, LoRA r 16 α 32 on query,value, 32 pairs (64 sequences) × seq 128,
//   budget 1.5 GiB, activation buffers within WebGPU's default 128 MiB binding (and BERT-base's
//   plan under a 1 GiB budget);
// - est_max_pairs_bge_small_1gib: the most pairs one exact step of BGE-small at seq 64 fits in 1 GiB;
// - measured_over_estimate: engine.peakBytes of one training step ÷ the estimate, on a 2-layer model
//   of BERT-large width (random weights, made here) run with BioLinkBERT-large's plan (its number of
//   slices and checkpointing; --measure-pairs / --measure-seq shrink the step for slow emulated GPUs);
// - cached_step_time_ratio: median step time with --per-pass sequences per pass ÷ the one-shot
//   step, BGE-small shape (--cached-layers of its 12 layers), 32 pairs × seq 32, steps alternated;
// - est_gib_qwen25_05b, est_gib_llama32_1b, est_gib_phi3_mini: decoders (bench/lib/decoder-memory.ts),
//   NF4 with double quantisation, LoRA r 16 on every linear, 8 sequences × 256 per step, planned into
//   micro-batches within each target (1.5, 2.5, 3.5 GiB; Phi-3-mini misses it, see there), and
//   measured_over_estimate_<model>_2l on 2-layer models of each width with the planned micro-batch
//   (--decoder-seqs sequences × --decoder-seq tokens instead, for slow emulated GPUs).
// --skip leaves out the GPU parts (each is minutes of SwiftShader); their keys are then absent.
// Node (Dawn) only; random weights, so only memory and time mean anything.
import { Rng } from '../src/data/rng.ts';
import { createNodeEngine } from '../src/engine/node-gpu.ts';
import type { Engine } from '../src/engine/engine.ts';
import { BertEncoder } from '../src/model/bert.ts';
import { type BertConfig, parseBertConfig } from '../src/model/config.ts';
import { GpuAdapter, type TrainingLoraConfig, initLoraTensors } from '../src/model/lora.ts';
import { type MemoryPlan, describePlan, estimateTrainingMemory, largestBatchWithin, planTraining } from '../src/model/memory.ts';
import { SentenceEncoder } from '../src/model/sentence.ts';
import type { StoragePrecision } from '../src/engine/stored.ts';
import { type StateDict, bertWeightShapes, shapeSize } from '../src/model/state-dict.ts';
import { bertTokenizerJson, createTokenizer } from '../src/model/tokenizer.ts';
import { DEFAULT_TRAIN_CONFIG } from '../src/train/defaults.ts';
import { type TrainConfig, Trainer } from '../src/train/trainer.ts';
import { decoderEstimates, measureDecoderPeaks } from './lib/decoder-memory.ts';
import { benchTokenBatch } from './lib/shapes.ts';
import { median } from './lib/stats.ts';

const GIB = 2 ** 30;
const DEFAULT_BINDING = 128 * 2 ** 20;
const PAIRS = 32;
const LORA: TrainingLoraConfig = { r: 16, alpha: 32, dropout: 0.1, rslora: false, targetModules: ['query', 'value'] };
const NF4 = { quantization: 'nf4' } as const;

const log = (line: string) => process.stderr.write(`${line}\n`);

function bertShape(layers: number, hidden: number, heads: number, intermediate: number, vocab: number): BertConfig {
  return parseBertConfig({
    model_type: 'bert',
    architectures: ['BertModel'],
    vocab_size: vocab,
    hidden_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    intermediate_size: intermediate,
    max_position_embeddings: 512,
  });
}

const BIOLINKBERT_LARGE = bertShape(24, 1024, 16, 4096, 28895);
const BERT_BASE = bertShape(12, 768, 12, 3072, 30522);
const BGE_SMALL = bertShape(12, 384, 12, 1536, 30522);

function plan(config: BertConfig, seq: number, budgetBytes: number): MemoryPlan {
  return planTraining({ config, lora: LORA, shape: { sequences: 2 * PAIRS, seq, anchors: PAIRS }, base: NF4, budgetBytes, maxBufferBytes: DEFAULT_BINDING });
}

/** Random weights (N(0, 0.02²), LayerNorm scales 1) and a placeholder vocabulary: only memory and time are measured. */
async function randomEncoder(engine: Engine, config: BertConfig, seed: number, baseParts: StoragePrecision = 'f32'): Promise<SentenceEncoder> {
  const rng = new Rng(seed);
  const weights: StateDict = new Map();
  for (const [name, shape] of bertWeightShapes(config)) {
    const data = new Float32Array(shapeSize(shape));
    if (name.endsWith('LayerNorm.weight')) data.fill(1);
    else if (name.endsWith('.weight')) for (let i = 0; i < data.length; i++) data[i] = rng.normal() * 0.02;
    weights.set(name, { shape, data });
  }
  const bert = await BertEncoder.create(engine, config, weights, { ...NF4, baseParts });
  bert.adapters = [new GpuAdapter(engine, config, LORA, initLoraTensors(config, LORA, seed, { pooler: false }), true)];
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...Array.from({ length: 16 }, (_, i) => `w${i}`)].join('\n');
  const tokenizer = createTokenizer(bertTokenizerJson(vocab, {}), {});
  engine.trimPool(); // the f32 weights staged for quantisation are not training memory
  return new SentenceEncoder(bert, tokenizer, { pooling: 'mean', normalize: true, maxLength: config.maxSequenceLength });
}

function trainConfig(layout: Pick<MemoryPlan, 'sequencesPerPass' | 'checkpointEvery'> & Partial<Pick<MemoryPlan, 'storage'>>): TrainConfig {
  const { sequencesPerPass, checkpointEvery, storage } = layout;
  return { ...DEFAULT_TRAIN_CONFIG, hiddenDropout: 0.1, totalSteps: 1000, sequencesPerPass, checkpointEvery, storage };
}

const GPU_PARTS = ['measured', 'timing', 'decoder'] as const;

function skipped(args: string[]): Set<string> {
  const i = args.indexOf('--skip');
  const parts = i < 0 ? [] : (args[i + 1] ?? '').split(',');
  for (const part of parts) if (!(GPU_PARTS as readonly string[]).includes(part)) throw new Error(`--skip takes parts among ${GPU_PARTS.join(',')}, got "${part}"`);
  return new Set(parts);
}

function option<T extends number | undefined>(args: string[], name: string, fallback: T): number | T {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} needs a positive integer, got ${args[i + 1]}`);
  return value;
}

export default async function bench(args: string[]): Promise<void> {
  const reps = option(args, 'reps', 3);
  const cachedLayers = option(args, 'cached-layers', BGE_SMALL.numHiddenLayers);
  const perPass = option(args, 'per-pass', 8);
  const started = performance.now();

  const largePlan = plan(BIOLINKBERT_LARGE, 128, 1.5 * GIB);
  const basePlan = plan(BERT_BASE, 128, 1.5 * GIB);
  const basePlan1 = plan(BERT_BASE, 128, 1 * GIB);
  console.log(`BioLinkBERT-large, ${PAIRS} pairs × 128, 1.5 GiB: ${describePlan(largePlan, 1.5 * GIB)}`);
  console.log(`BERT-base, ${PAIRS} pairs × 128, 1.5 GiB: ${describePlan(basePlan, 1.5 * GIB)}`);
  console.log(`BERT-base, ${PAIRS} pairs × 128, 1 GiB: ${describePlan(basePlan1, 1 * GIB)}`);
  const decoder = decoderEstimates();
  const maxPairs = largestBatchWithin({ config: BGE_SMALL, lora: LORA, base: NF4, seq: 64, budgetBytes: GIB, maxBufferBytes: DEFAULT_BINDING });
  console.log(`BGE-small, seq 64: at most ${maxPairs} pairs in one exact step within 1 GiB`);

  const skip = skipped(args);
  const engine = await createNodeEngine();
  log(`GPU: ${engine.adapter.vendor} ${engine.adapter.architecture} ${engine.adapter.description}`);
  const figures: Record<string, unknown> = {};
  const measureShape = { pairs: option(args, 'measure-pairs', PAIRS), seq: option(args, 'measure-seq', 128) };
  if (!skip.has('measured')) Object.assign(figures, await measurePeak(engine, largePlan, measureShape));
  if (!skip.has('timing')) Object.assign(figures, await timeCachedStep(engine, reps, cachedLayers, perPass));
  const decoderShape = { sequences: option(args, 'decoder-seqs', undefined), seq: option(args, 'decoder-seq', undefined) };
  if (!skip.has('decoder')) Object.assign(figures, await measureDecoderPeaks(engine, decoder.plans, decoderShape));
  engine.destroy();

  const layout = (p: MemoryPlan) => ({ sequences_per_pass: p.sequencesPerPass, checkpoint_every: p.checkpointEvery, storage: p.storage });
  console.log(
    JSON.stringify({
      name: 'memory',
      adapter: engine.adapter.description || `${engine.adapter.vendor} ${engine.adapter.architecture}`,
      skipped: [...skip],
      est_gib_biolinkbert_large: +(largePlan.estimate.total / GIB).toFixed(3),
      biolinkbert_large_plan: layout(largePlan),
      est_gib_bert_base: +(basePlan.estimate.total / GIB).toFixed(3),
      bert_base_plan: layout(basePlan),
      est_gib_bert_base_1gib_budget: +(basePlan1.estimate.total / GIB).toFixed(3),
      bert_base_1gib_plan: layout(basePlan1),
      est_max_pairs_bge_small_1gib: maxPairs,
      ...decoder.figures,
      ...figures,
      wall_s: +((performance.now() - started) / 1000).toFixed(1),
    }),
  );
}

/**
 * Measured peak of one step of a 2-layer model of BERT-large width ÷ its estimate, `shape.pairs`
 * pairs × `shape.seq`, cut into as many slices as `plan` cuts 32 pairs, with its checkpointing.
 */
async function measurePeak(engine: Engine, plan: MemoryPlan, shape: { pairs: number; seq: number }): Promise<Record<string, unknown>> {
  const config = bertShape(2, 1024, 16, 4096, 28895);
  const sequences = 2 * shape.pairs;
  const slices = plan.sequencesPerPass === null ? 1 : Math.ceil((2 * PAIRS) / plan.sequencesPerPass);
  const layout = { ...plan, sequencesPerPass: slices === 1 ? null : Math.ceil(sequences / slices) };
  // The plan's storage covers the base's f32 parts too, as the estimate counts them.
  const encoder = await randomEncoder(engine, config, 11, plan.storage);
  const trainer = new Trainer(encoder, trainConfig(layout));
  const batch = { tokens: benchTokenBatch(sequences, shape.seq, config.vocabSize, 12), anchors: shape.pairs, labels: null };
  engine.peakBytes = engine.liveBytes;
  log(`one step of the 2-layer BERT-large-width model, ${shape.pairs} pairs × ${shape.seq}…`);
  await trainer.trainStep([batch]);
  const measured = engine.peakBytes;
  const estimate = estimateTrainingMemory(config, LORA, { sequences, seq: shape.seq, anchors: shape.pairs }, NF4, layout).total;
  console.log(`2-layer BERT-large width, ${shape.pairs} pairs × ${shape.seq}, plan's layout: measured peak ${(measured / 2 ** 20).toFixed(1)} MiB, estimate ${(estimate / 2 ** 20).toFixed(1)} MiB`);
  trainer.release();
  encoder.bert.destroy();
  engine.trimPool();
  return {
    measured_over_estimate: +(measured / estimate).toFixed(3),
    measured_peak_bytes: measured,
    estimate_bytes: estimate,
    measured_step: `2 layers, hidden 1024, ${shape.pairs} pairs × seq ${shape.seq}, ${layout.sequencesPerPass ?? sequences} sequences per pass, checkpoint every ${layout.checkpointEvery}, ${layout.storage} storage`,
  };
}

/** Median cached ÷ one-shot step time on the BGE-small shape, the two kinds of step alternated so both see the same machine load. */
async function timeCachedStep(engine: Engine, reps: number, layers: number, perPass: number): Promise<Record<string, unknown>> {
  const config = bertShape(layers, 384, 12, 1536, 30522);
  const encoder = await randomEncoder(engine, config, 21);
  const batch = { tokens: benchTokenBatch(2 * PAIRS, 32, config.vocabSize, 22), anchors: PAIRS, labels: null };
  const oneShot = new Trainer(encoder, trainConfig({ sequencesPerPass: null, checkpointEvery: 0 }));
  const cached = new Trainer(encoder, trainConfig({ sequencesPerPass: perPass, checkpointEvery: 0 }));
  const timed = async (trainer: Trainer) => {
    const t0 = performance.now();
    await trainer.trainStep([batch]);
    return performance.now() - t0;
  };
  await timed(oneShot);
  await timed(cached); // warm-ups: pipelines compile on first use
  const oneShotMs: number[] = [];
  const cachedMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    oneShotMs.push(await timed(oneShot));
    cachedMs.push(await timed(cached));
    log(`step ${i + 1}/${reps}: one-shot ${(oneShotMs[i] / 1000).toFixed(2)} s, cached ${(cachedMs[i] / 1000).toFixed(2)} s`);
  }
  oneShot.release();
  cached.release();
  encoder.bert.destroy();
  engine.trimPool();
  console.log(
    `BGE-small shape (${layers} layers), ${PAIRS} pairs × 32: one-shot ${(median(oneShotMs) / 1000).toFixed(2)} s, ${perPass} sequences per pass ${(median(cachedMs) / 1000).toFixed(2)} s (medians of ${reps})`,
  );
  return {
    cached_step_time_ratio: +(median(cachedMs) / median(oneShotMs)).toFixed(3),
    cached_step_model: `BGE-small shape, ${layers} of 12 layers, ${perPass} sequences per pass, ${PAIRS} pairs × seq 32`,
    one_shot_step_s: +(median(oneShotMs) / 1000).toFixed(3),
    cached_step_s: +(median(cachedMs) / 1000).toFixed(3),
    reps,
  };
}
