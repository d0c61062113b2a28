/**
 * GPU memory needed to train: base weights, LoRA parameters (+ gradients), optimizer state and
 * activations, estimated from the config, batch shape and step layout (gradient caching,
 * checkpointing, storage precision) before anything is allocated, buffer by buffer as the engine's
 * pool sizes them; and the automatic plan that picks a layout to fit a budget. The engine's
 * `peakBytes` gives the measured figure after a step.
 */
import { sizeClass } from '../engine/engine.ts';
import type { BertConfig } from './config.ts';
import { replayCachedEncoderPass, replayEncoderPass } from './bert-pass-replay.ts';
import { LINEAR_SUFFIXES, type LinearSuffix, type LoraConfig, moduleName, moduleShape, resolveTargets } from './lora.ts';

export interface MemoryEstimate {
  baseWeights: number;
  loraParameters: number;
  loraGradients: number;
  optimizerState: number;
  activations: number;
  total: number;
  /** The largest single buffer: must fit maxStorageBufferBindingSize. */
  largestBuffer: number;
  /** The largest buffer whose size the step's layout controls (activations, the loss's matrices). */
  largestActivationBuffer: number;
}

export interface TrainingShape {
  /** Sequences per micro-batch (for InfoNCE: anchors + positives + negatives). */
  sequences: number;
  seq: number;
  /** Anchors (text_a) among them, which sizes the loss's similarity matrices; default half. */
  anchors?: number;
}

/** Precision of what is stored but not trained: saved activations and the base's f32 parts. */
export type StoragePrecision = 'f32' | 'f16';

/** How a step runs: what the automatic plan chooses. */
export interface StepLayout {
  /** Sequences per encoder pass (gradient caching, exact); null = the whole micro-batch in one pass. */
  sequencesPerPass: number | null;
  /** Activation checkpointing of every n-th encoder layer; 0 = off. */
  checkpointEvery: number;
  /** Saved activations, word/position/token-type embeddings and LayerNorms in f32 or packed f16. */
  storage: StoragePrecision;
}

export const ONE_SHOT_LAYOUT: StepLayout = { sequencesPerPass: null, checkpointEvery: 0, storage: 'f32' };

const F32 = 4;
const F16 = 2;

/** Bytes of an NF4 weight of `n` elements: packed nibbles + absmax (fp32, or 8-bit with fp32 per 256 blocks). */
export function nf4Bytes(n: number, doubleQuant: boolean): number {
  const blocks = Math.ceil(n / 64);
  const packed = Math.ceil(n / 8) * 4;
  return packed + (doubleQuant ? Math.ceil(blocks / 4) * 4 + Math.ceil(blocks / 256) * F32 : blocks * F32);
}

/** What one buffer of `elements` values of `width` bytes takes from the engine's pool (its size class). */
function buffer(elements: number, width = F32): number {
  return sizeClass(Math.ceil((elements * width) / 4) * 4);
}

/** Layers that keep only their input when checkpointing every n-th (layers 0, n, 2n, …). */
export function checkpointedLayers(layers: number, every: number): number {
  return every > 0 ? Math.floor((layers - 1) / every) + 1 : 0;
}

export function estimateTrainingMemory(
  config: BertConfig,
  lora: LoraConfig | null,
  shape: TrainingShape,
  base: { quantization: 'nf4' | 'f32'; doubleQuant?: boolean },
  layout: Partial<StepLayout> = {},
): MemoryEstimate {
  const { sequencesPerPass, checkpointEvery, storage } = { ...ONE_SHOT_LAYOUT, ...layout };
  const h = config.hiddenSize;
  const i = config.intermediateSize;
  const layers = config.numHiddenLayers;
  const stored = storage === 'f16' ? F16 : F32;
  const words = config.vocabSize * h;
  const embeddings = buffer(words, stored) + buffer(config.maxPositionEmbeddings * h, stored) + buffer(config.typeVocabSize * h, stored) + 2 * buffer(h, stored);
  const linearWeights = [h * h, h * h, h * h, h * h, h * i, i * h];
  const linearBytes = linearWeights.reduce(
    (sum, n) => sum + (base.quantization === 'nf4' ? nf4Bytes(n, base.doubleQuant ?? false) : n * F32),
    0,
  );
  const biases = (4 * h + i + h) * F32;
  const norms = 4 * h * stored;
  const baseWeights = embeddings + layers * (linearBytes + biases + norms);

  let loraParameters = 0;
  // The trainable adapter's rank on each linear of a layer it adapts (layer 0 stands for all).
  const ranks = new Map<LinearSuffix, number>();
  if (lora) {
    // GPU memory: the pooler's LoRA, if any, stays on the host (the engine does not run the pooler).
    const targets = resolveTargets(config, lora, { pooler: false });
    for (const name of targets) {
      const s = moduleShape(config, name);
      loraParameters += lora.r * (s.in + s.out) * F32;
    }
    for (const suffix of LINEAR_SUFFIXES) if (targets.includes(moduleName(0, suffix))) ranks.set(suffix, lora.r);
  }

  const n = shape.sequences;
  const seq = shape.seq;
  const anchors = shape.anchors ?? Math.ceil(n / 2);
  const perPass = Math.min(n, sequencesPerPass || n);
  const cached = perPass < n;
  // The encoder's activations and gradients, buffer by buffer as bert.ts takes and releases them
  // (a cached step's first pass before, whose buffers the second reuses).
  const passShape = { sequences: perPass, seq, checkpointEvery, storage, ranks };
  const encoderPass = cached ? replayCachedEncoderPass(config, passShape) : replayEncoderPass(config, passShape);
  const probs = perPass * config.numAttentionHeads * seq * seq;
  const largestPassBuffer = Math.max(buffer(perPass * seq * i), buffer(probs));
  // The loss on all n embeddings: anchor/other copies and their gradients, dEmbeddings, logits, probabilities (and transposed), dLogits.
  const others = n - anchors;
  const lossBytes = 2 * buffer(anchors * h) + 2 * buffer(others * h) + buffer(n * h) + 3 * buffer(anchors * others) + buffer(anchors * anchors);
  // Gradient caching adds the batch's embeddings (pass 1) and a slice of dEmbeddings (pass 2).
  const activations = encoderPass + lossBytes + (cached ? buffer(n * h) + buffer(perPass * h) : 0);
  const largestActivationBuffer = Math.max(largestPassBuffer, buffer(anchors * others));
  const total = baseWeights + 2 * loraParameters + 2 * loraParameters + activations;
  return {
    baseWeights,
    loraParameters,
    loraGradients: loraParameters,
    optimizerState: 2 * loraParameters,
    activations,
    total,
    largestBuffer: Math.max(buffer(words, stored), largestActivationBuffer),
    largestActivationBuffer,
  };
}

/** Why `estimate` cannot run on a device with these limits, one sentence each; empty when it fits. */
export function bufferLimitProblems(estimate: MemoryEstimate, limits: { maxBufferSize: number; maxStorageBufferBindingSize: number }): string[] {
  const { maxBufferSize, maxStorageBufferBindingSize } = limits;
  const problems: string[] = [];
  if (estimate.largestBuffer > maxStorageBufferBindingSize) {
    problems.push(
      `The largest buffer needs ${estimate.largestBuffer} bytes, over this GPU's maxStorageBufferBindingSize of ${maxStorageBufferBindingSize}: lower the batch size or the maximum length.`,
    );
  }
  if (estimate.largestBuffer > maxBufferSize) problems.push(`The largest buffer needs ${estimate.largestBuffer} bytes, over this GPU's maxBufferSize of ${maxBufferSize}.`);
  return problems;
}

export interface PlanRequest {
  config: BertConfig;
  lora: LoraConfig | null;
  shape: TrainingShape;
  base: { quantization: 'nf4' | 'f32'; doubleQuant?: boolean };
  /** GPU memory the step may use, in bytes. */
  budgetBytes: number;
  /** The device's largest binding (maxStorageBufferBindingSize): every activation buffer must fit. */
  maxBufferBytes?: number;
  /** Storage precisions to choose among (default both: f16 is core WGSL, every device has it). */
  storages?: StoragePrecision[];
  /** Choices already made (by the user): the plan chooses only the rest. */
  fixed?: Partial<StepLayout>;
}

export interface MemoryPlan extends StepLayout {
  estimate: MemoryEstimate;
  /** Encoder passes per micro-batch (1 = one shot; a cached step runs 2 per slice but the last, whose first pass keeps its activations). */
  passes: number;
  /** Estimated step time relative to the one-shot step without checkpointing. */
  relativeTime: number;
  fits: boolean;
}

/** Each encoder pass costs about as much as this many tokens more (launches, an underfilled GPU). */
export const PASS_OVERHEAD_TOKENS = 256;
const CHECKPOINT_CHOICES = [0, 3, 2, 1];
const STORAGE_CHOICES: StoragePrecision[] = ['f32', 'f16'];
/**
 * Layouts this much slower than the fastest that fits still count as fast, and the least memory
 * among them wins: clinic GPUs share memory with everything else, so halving the memory is worth a
 * few more recomputed layers (BERT-base, 32 pairs × 128: every layer checkpointed, 14% slower,
 * 0.77 GiB instead of 1.42).
 */
export const TIME_TOLERANCE = 0.15;

/**
 * Time of a layout relative to the one-shot step, counting a forward as 1 and a backward as 2:
 * gradient caching adds a forward of every slice but the last, checkpointing the forward of the
 * layers it recomputes.
 */
function relativeTime(config: BertConfig, shape: TrainingShape, layout: StepLayout): number {
  const n = shape.sequences;
  const perPass = Math.min(n, layout.sequencesPerPass || n);
  const slices = Math.ceil(n / perPass);
  const work = 3 + (slices - 1) / slices + checkpointedLayers(config.numHiddenLayers, layout.checkpointEvery) / config.numHiddenLayers;
  const tokens = n * shape.seq;
  return (work * (tokens + (2 * slices - 1) * PASS_OVERHEAD_TOKENS)) / (3 * (tokens + PASS_OVERHEAD_TOKENS));
}

/**
 * When the whole step fits in one pass without checkpointing, that, in f32 if it fits (nothing
 * traded, not even precision), else in f16 (as fast). Otherwise the step is slower than one-shot
 * anyway: among the layouts whose estimate fits the budget (and whose activation buffers fit the
 * device), those within TIME_TOLERANCE of the fastest, and of them the one that needs least memory,
 * since clinic GPUs share their memory with everything else. f16 storage costs no estimated time
 * (packing is a pass over what is kept), so it then wins unless the user has fixed the precision.
 * If no layout fits, the one that needs least memory, with `fits` false. The loss and gradients are
 * those of the one-shot step whatever is chosen (f16 storage rounds the kept activations:
 * tests/model/half-activations.gpu.test.ts).
 */
export function planTraining(request: PlanRequest): MemoryPlan {
  const { config, shape, budgetBytes } = request;
  if (!(budgetBytes > 0)) throw new Error(`the memory budget must be a positive number of bytes, got ${budgetBytes}`);
  if (!(Number.isInteger(shape.sequences) && shape.sequences > 0 && Number.isInteger(shape.seq) && shape.seq > 0)) {
    throw new Error(`a training batch needs whole positive sequences and length, got ${shape.sequences} × ${shape.seq}`);
  }
  const maxBuffer = request.maxBufferBytes ?? Number.POSITIVE_INFINITY;
  const fixed = request.fixed ?? {};
  const checkpointChoices = fixed.checkpointEvery !== undefined ? [fixed.checkpointEvery] : CHECKPOINT_CHOICES.filter((every) => every <= config.numHiddenLayers);
  // Slices per micro-batch to try: every count that changes the pass size, or the one asked for.
  const fixedSlices = fixed.sequencesPerPass !== undefined ? Math.ceil(shape.sequences / Math.min(shape.sequences, fixed.sequencesPerPass || shape.sequences)) : null;
  const storages = fixed.storage !== undefined ? [fixed.storage] : (request.storages ?? STORAGE_CHOICES);
  const fitting: MemoryPlan[] = [];
  let smallest: MemoryPlan | null = null;
  for (const storage of storages) {
    for (const checkpointEvery of checkpointChoices) {
      let previous = 0;
      for (let slices = fixedSlices ?? 1; slices <= (fixedSlices ?? shape.sequences); slices++) {
        const perPass = Math.ceil(shape.sequences / slices);
        if (perPass === previous) continue;
        previous = perPass;
        const layout: StepLayout = { sequencesPerPass: slices === 1 ? null : (fixed.sequencesPerPass ?? perPass), checkpointEvery, storage };
        const estimate = estimateTrainingMemory(config, request.lora, shape, request.base, layout);
        const plan: MemoryPlan = {
          ...layout,
          estimate,
          passes: slices === 1 ? 1 : 2 * Math.ceil(shape.sequences / layout.sequencesPerPass!) - 1,
          relativeTime: relativeTime(config, shape, layout),
          fits: estimate.total <= budgetBytes && estimate.largestActivationBuffer <= maxBuffer,
        };
        if (plan.fits) fitting.push(plan);
        if (!smallest || estimate.total < smallest.estimate.total) smallest = { ...plan, fits: false };
      }
    }
  }
  if (fitting.length === 0) return smallest!;
  const least = (plans: MemoryPlan[]) => plans.reduce((min, p) => (p.estimate.total < min.estimate.total ? p : min));
  const oneShot = fitting.filter((p) => p.sequencesPerPass === null && p.checkpointEvery === 0);
  if (oneShot.length > 0) return oneShot.find((p) => p.storage === 'f32') ?? least(oneShot);
  const fastest = Math.min(...fitting.map((p) => p.relativeTime));
  return least(fitting.filter((p) => p.relativeTime <= fastest * (1 + TIME_TOLERANCE)));
}

/** The most pairs (2 sequences each) whose one exact step fits `budgetBytes` under an automatic plan. */
export function largestBatchWithin(request: Omit<PlanRequest, 'shape'> & { seq: number }, upTo = 1 << 20): number {
  const fits = (pairs: number) => planTraining({ ...request, shape: { sequences: 2 * pairs, seq: request.seq, anchors: pairs } }).fits;
  if (!fits(1)) return 0;
  let lo = 1;
  let hi = upTo;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** One line for people: the plan's layout and its estimate against the budget. */
export function describePlan(plan: MemoryPlan, budgetBytes: number): string {
  const n = plan.estimate;
  const layout = [
    plan.sequencesPerPass === null ? 'whole batch in one pass' : `${plan.sequencesPerPass} sequences per pass (exact, gradient-cached)`,
    plan.checkpointEvery === 0 ? 'no checkpointing' : plan.checkpointEvery === 1 ? 'every layer checkpointed' : `1 layer in ${plan.checkpointEvery} checkpointed`,
    `${plan.storage} storage`,
  ].join(', ');
  const verdict = plan.fits ? `of a ${formatBytes(budgetBytes)} budget` : `— over the ${formatBytes(budgetBytes)} budget even so`;
  return `memory plan: ${layout}; estimate ${formatBytes(n.total)} ${verdict} (base ${formatBytes(n.baseWeights)}, activations ${formatBytes(n.activations)})`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
