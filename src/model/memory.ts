/**
 * GPU memory needed to train: base weights, LoRA parameters (+ gradients), optimizer state and
 * activations, estimated from the config and batch shape before anything is allocated. The engine's
 * `peakBytes` gives the measured figure after a step.
 */
import type { BertConfig } from './config.ts';
import { type LoraConfig, moduleShape, resolveTargets } from './lora.ts';

export interface MemoryEstimate {
  baseWeights: number;
  loraParameters: number;
  loraGradients: number;
  optimizerState: number;
  activations: number;
  total: number;
  /** The largest single buffer: must fit maxStorageBufferBindingSize. */
  largestBuffer: number;
}

export interface TrainingShape {
  /** Sequences per micro-batch (for InfoNCE: anchors + positives + negatives). */
  sequences: number;
  seq: number;
}

const F32 = 4;

/** Bytes of an NF4 weight of `n` elements: packed nibbles + absmax (fp32, or 8-bit with fp32 per 256 blocks). */
export function nf4Bytes(n: number, doubleQuant: boolean): number {
  const blocks = Math.ceil(n / 64);
  const packed = Math.ceil(n / 8) * 4;
  return packed + (doubleQuant ? Math.ceil(blocks / 4) * 4 + Math.ceil(blocks / 256) * F32 : blocks * F32);
}

export function estimateTrainingMemory(
  config: BertConfig,
  lora: LoraConfig | null,
  shape: TrainingShape,
  base: { quantization: 'nf4' | 'f32'; doubleQuant?: boolean },
): MemoryEstimate {
  const h = config.hiddenSize;
  const i = config.intermediateSize;
  const layers = config.numHiddenLayers;
  const embeddings = (config.vocabSize + config.maxPositionEmbeddings + config.typeVocabSize) * h * F32 + 2 * h * F32;
  const linearWeights = [h * h, h * h, h * h, h * h, h * i, i * h];
  const linearBytes = linearWeights.reduce(
    (sum, n) => sum + (base.quantization === 'nf4' ? nf4Bytes(n, base.doubleQuant ?? false) : n * F32),
    0,
  );
  const biasesAndNorms = (4 * h + i + h + 4 * h) * F32;
  const baseWeights = embeddings + layers * (linearBytes + biasesAndNorms);

  let loraParameters = 0;
  let xaPerToken = 0;
  if (lora) {
    // GPU memory: the pooler's LoRA, if any, stays on the host (the engine does not run the pooler).
    for (const name of resolveTargets(config, lora, { pooler: false })) {
      const s = moduleShape(config, name);
      loraParameters += lora.r * (s.in + s.out) * F32;
      xaPerToken += lora.r * F32;
    }
  }
  const m = shape.sequences * shape.seq;
  const probs = shape.sequences * config.numAttentionHeads * shape.seq * shape.seq * F32;
  // Saved per layer: x q k v context h1 y1 h2 (8·H), u g (2·I), LayerNorm stats (4 floats), LoRA X·Aᵀ.
  const perLayer = m * (8 * h + 2 * i + 4) * F32 + probs;
  const saved = layers * perLayer + m * xaPerToken + m * h * F32;
  // Backward holds a few transient [M,H] / [M,I] buffers and one probs-sized gradient at once.
  const transient = m * (6 * h + 2 * i) * F32 + probs;
  const activations = saved + transient;
  const largestBuffer = Math.max(config.vocabSize * h * F32, m * i * F32, probs);
  const total = baseWeights + 2 * loraParameters + 2 * loraParameters + activations;
  return {
    baseWeights,
    loraParameters,
    loraGradients: loraParameters,
    optimizerState: 2 * loraParameters,
    activations,
    total,
    largestBuffer,
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
