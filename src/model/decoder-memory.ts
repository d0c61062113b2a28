/**
 * GPU memory needed to train a LoRA on a decoder LLM, before anything is allocated, and the plan
 * that fits a step into a budget. The model's allocations are replayed in its order through the
 * engine's pool rules (pool-replay.ts): loading (NF4 quantisation's f32 staging is trimmed before
 * training, as the callers do), the adapter with its gradients and AdamW moments, then one
 * micro-batch's forward (each layer's DecoderLayerCache kept, or only its input where checkpointed),
 * the chunked LM-head loss and the backward (checkpointed layers run again one at a time). The total
 * is what engine.peakBytes reports after a step.
 *
 * Causal-LM loss is a mean over tokens, so a step of many sequences is exactly the sum of smaller
 * micro-batches' (each normalised by the step's token count), and checkpointing recomputes the same
 * activations: the plan chooses the micro-batch and the checkpoint interval.
 */
import { halfWords } from '../engine/ops/half.ts';
import { ABSMAX_BLOCK, NF4_BLOCK } from '../engine/ops/nf4.ref.ts';
import { type StoragePrecision, storedBlockRows } from '../engine/stored.ts';
import type { BaseQuantization } from './adapted-linear.ts';
import type { DecoderConfig } from './decoder-config.ts';
import { decoderLinearShape, decoderModuleName } from './decoder-lora.ts';
import { DEFAULT_LM_HEAD_CHUNK, isCheckpointedLayer } from './decoder.ts';
import { DECODER_LINEARS, type DecoderLinear } from './decoder-weights.ts';
import { type LoraConfig, targetsModule } from './lora.ts';
import { type MemoryEstimate, PASS_OVERHEAD_TOKENS, checkpointedLayers, formatBytes } from './memory.ts';
import { PoolReplay } from './pool-replay.ts';

export interface DecoderBase {
  quantization: BaseQuantization;
  doubleQuant?: boolean;
  /** Storage of the token embeddings and untied LM head (DecoderBaseOptions.baseParts; default f32). */
  baseParts?: StoragePrecision;
}

/** WebGPU's default maxStorageBufferBindingSize: the binding the embeddings are split for unless told. */
const DEFAULT_BINDING_BYTES = 2 ** 27;

/** 4-byte words of each row block storeMatrix uploads a [rows, cols] matrix in. */
function storedBlockWords(name: string, rows: number, cols: number, precision: StoragePrecision, maxBindingBytes: number): number[] {
  const perBlock = storedBlockRows(name, cols, precision, maxBindingBytes);
  const words: number[] = [];
  for (let first = 0; first < rows; first += perBlock) {
    const n = Math.min(perBlock, rows - first) * cols;
    words.push(precision === 'f32' ? n : halfWords(n));
  }
  return words;
}

/** One micro-batch: `sequences` rows of `seq` tokens (padded) in one forward and backward. */
export interface DecoderMicroBatch {
  sequences: number;
  seq: number;
}

/** Replay DecoderModel.create, then trim the pool: the base as it stays on the GPU. */
function replayBase(pool: PoolReplay, config: DecoderConfig, base: DecoderBase, maxBindingBytes: number): void {
  const { hiddenSize: h, vocabSize: v } = config;
  // A bitsandbytes checkpoint's NF4 weights are uploaded as they are; f32 ones are quantised on the GPU.
  const bnb = config.quantization;
  const doubleQuant = bnb ? bnb.doubleQuant : (base.doubleQuant ?? false);
  const nf4 = bnb !== null || base.quantization === 'nf4';
  let dynamicMap = false;
  // Weights take buffers of their exact size (Engine.alloc's 'exact' fit); scratch takes size classes.
  const weight = (elements: number) => pool.alloc(elements, 'exact');
  const vocabMatrix = (name: string) => {
    for (const words of storedBlockWords(name, v, h, base.baseParts ?? 'f32', maxBindingBytes)) weight(words);
  };
  vocabMatrix('model.embed_tokens.weight');
  if (!config.tieWordEmbeddings) vocabMatrix('lm_head.weight');
  weight(h);
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    for (const linear of DECODER_LINEARS) {
      const shape = decoderLinearShape(config, linear);
      const hasBias = (config.qkvBias && linear !== 'self_attn.o_proj' && linear.startsWith('self_attn.')) || (config.outputBias && linear === 'self_attn.o_proj');
      if (hasBias) weight(shape.out);
      const n = shape.in * shape.out;
      const blocks = Math.ceil(n / NF4_BLOCK);
      if (!nf4) {
        weight(n);
        continue;
      }
      const staging = bnb ? null : weight(n);
      weight(Math.ceil(n / 8)); // packed nibbles, 8 per u32
      if (!doubleQuant) {
        weight(blocks);
      } else {
        const absmax = bnb ? null : pool.alloc(blocks);
        if (!bnb) pool.release(pool.alloc(1)); // the mean absmax, read back
        weight(Math.ceil(blocks / 4)); // 8-bit absmax codes, 4 per u32
        weight(Math.ceil(blocks / ABSMAX_BLOCK));
        if (!bnb && !dynamicMap) pool.alloc(256);
        dynamicMap = true;
        pool.release(absmax);
      }
      pool.release(staging);
    }
    weight(h);
    weight(h);
    if (config.qkNorm) {
      weight(config.headDim);
      weight(config.headDim);
    }
  }
  pool.trim();
}

/** The adapter's rank on a layer's linear, 0 where it adds none. */
type RankOf = (layer: number, linear: DecoderLinear) => number;

function rankOf(lora: LoraConfig | null): RankOf {
  return (layer, linear) => (lora && targetsModule(lora, decoderModuleName(layer, linear)) ? lora.r : 0);
}

/** Replay the adapter (A, B and their gradients, as GpuLoraModules uploads them) and AdamW's state: bytes of each. */
function replayAdapter(pool: PoolReplay, config: DecoderConfig, lora: LoraConfig | null) {
  const rank = rankOf(lora);
  const sizes: number[] = [];
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    for (const linear of DECODER_LINEARS) {
      const r = rank(layer, linear);
      if (r === 0) continue;
      const s = decoderLinearShape(config, linear);
      sizes.push(r * s.in, s.out * r);
    }
  }
  const sum = (bytes: number[]) => bytes.reduce((a, b) => a + b, 0);
  const loraParameters = sum(sizes.map((n) => pool.alloc(n)));
  const loraGradients = sum(sizes.map((n) => pool.alloc(n)));
  if (sizes.length === 0) return { loraParameters, loraGradients, optimizerState: 0 };
  // AdamW: m and v like each parameter, one partial sum of squares per 1024 elements, the norm.
  const moments = sum(sizes.map((n) => pool.alloc(n))) + sum(sizes.map((n) => pool.alloc(n)));
  const partials = sum(sizes.map((n) => Math.ceil(n / 1024)));
  return { loraParameters, loraGradients, optimizerState: moments + pool.alloc(partials) + pool.alloc(1) };
}

/** Replay one micro-batch: forward (a checkpointed layer keeps its input only), the chunked LM-head loss, backward. */
function replayStep(pool: PoolReplay, config: DecoderConfig, rank: RankOf, micro: DecoderMicroBatch, lmHeadChunk: number, checkpointEvery: number, baseParts: StoragePrecision): void {
  const { hiddenSize: h, intermediateSize: inter, headDim: d, numAttentionHeads: heads, numKeyValueHeads: kvHeads } = config;
  const t = micro.seq;
  const m = micro.sequences * t;
  const q = heads * d;
  const kv = kvHeads * d;
  const width: Record<DecoderLinear, number> = {
    'self_attn.q_proj': q,
    'self_attn.k_proj': kv,
    'self_attn.v_proj': kv,
    'self_attn.o_proj': h,
    'mlp.gate_proj': inter,
    'mlp.up_proj': inter,
    'mlp.down_proj': h,
  };
  let layer = 0;
  // linearBackward's [rows, r] scratch for the adapter's gradients.
  const linearBack = (name: DecoderLinear) => {
    if (rank(layer, name) > 0) pool.release(pool.alloc(m * rank(layer, name)));
  };

  /** DecoderModel.layerForward: its output, and the activations it keeps with `save` (else released). */
  const layerForward = (save: boolean) => {
    const kept: number[] = [];
    // linearForward: the output, then the trainable adapter's X·Aᵀ, kept only when saving.
    const linear = (name: DecoderLinear) => {
      const y = pool.alloc(m * width[name]);
      if (rank(layer, name) > 0) {
        const xa = pool.alloc(m * rank(layer, name));
        if (save) kept.push(xa);
        else pool.release(xa);
      }
      return y;
    };
    const keep = (elements: number) => {
      const buffer = pool.alloc(elements);
      kept.push(buffer);
      return buffer;
    };
    keep(m); // rstd1
    keep(m * h); // n1
    const qProj = linear('self_attn.q_proj');
    const kProj = linear('self_attn.k_proj');
    kept.push(linear('self_attn.v_proj'));
    let qIn = qProj;
    let kIn = kProj;
    if (config.qkNorm) {
      // The normed q, k are released after RoPE; the projections and per-head rstd are kept.
      kept.push(qProj, kProj);
      qIn = pool.alloc(m * q);
      keep(m * heads);
      kIn = pool.alloc(m * kv);
      keep(m * kvHeads);
    }
    keep(m * q);
    keep(m * kv);
    pool.release(qIn, kIn);
    keep(m * q); // context
    keep(m * heads); // log-sum-exp
    const attnOut = linear('self_attn.o_proj');
    keep(m * h);
    pool.release(attnOut);
    keep(m);
    keep(m * h);
    kept.push(linear('mlp.gate_proj'), linear('mlp.up_proj'));
    keep(m * inter);
    const output = linear('mlp.down_proj');
    if (!save) pool.release(...kept.splice(0));
    return { output, kept };
  };

  // Forward: ids, zero ids and zero rows (of the table's precision) for the embedding gather, then mask, RoPE table and positions.
  const ids = pool.alloc(m);
  const zeroIds = pool.alloc(m);
  const zeroRows = pool.alloc(baseParts === 'f32' ? t * h : halfWords(t * h));
  pool.alloc(m * h);
  pool.release(ids, zeroIds, zeroRows);
  pool.alloc(m);
  pool.alloc(t * d);
  pool.alloc(m);
  for (layer = 0; layer < config.numHiddenLayers; layer++) layerForward(!isCheckpointedLayer(layer, checkpointEvery));
  pool.alloc(m * h); // hidden after the final norm
  pool.alloc(m);

  // Loss: targets, loss, token losses, lse, running sums, and the chunk scratches (forward, then backward).
  const chunk = Math.min(lmHeadChunk, config.vocabSize);
  const chunkScratch = () => pool.release(pool.alloc(m * chunk), pool.alloc(chunk * h));
  pool.alloc(m);
  pool.alloc(1);
  pool.alloc(m);
  pool.alloc(m);
  const running = pool.alloc(3 * m);
  chunkScratch();
  pool.release(running);
  const dHidden = pool.alloc(m * h);
  chunkScratch();

  // Backward, layer by layer from the last, as DecoderModel.layerBackward allocates and releases;
  // a checkpointed layer's forward runs again first, and its activations go once its backward is done.
  let dy = pool.alloc(m * h);
  for (layer = config.numHiddenLayers - 1; layer >= 0; layer--) {
    const recomputed = isCheckpointedLayer(layer, checkpointEvery) ? layerForward(true) : null;
    const dAct = pool.alloc(m * inter);
    linearBack('mlp.down_proj');
    const dGate = pool.alloc(m * inter);
    const dUp = pool.alloc(m * inter);
    pool.release(dAct);
    const dn2 = pool.alloc(m * h);
    linearBack('mlp.gate_proj');
    linearBack('mlp.up_proj');
    pool.release(dGate, dUp);
    const dh = pool.alloc(m * h);
    pool.release(dn2);
    const dContext = pool.alloc(m * q);
    linearBack('self_attn.o_proj');
    const dqRot = pool.alloc(m * q);
    const dkRot = pool.alloc(m * kv);
    const dv = pool.alloc(m * kv);
    pool.release(pool.alloc(2 * m * heads)); // attention backward's row statistics
    pool.release(dContext);
    const dq = pool.alloc(m * q);
    const dk = pool.alloc(m * kv);
    pool.release(dqRot, dkRot);
    const dn1 = layer > 0 ? pool.alloc(m * h) : null;
    linearBack('self_attn.q_proj');
    linearBack('self_attn.k_proj');
    linearBack('self_attn.v_proj');
    pool.release(dq, dk, dv);
    if (!dn1) {
      pool.release(dh);
      break;
    }
    const dx = pool.alloc(m * h);
    pool.release(dn1, dh, dy);
    if (recomputed) pool.release(recomputed.output, ...recomputed.kept);
    dy = dx;
  }
  pool.release(dy, dHidden);
}

/**
 * Bytes a LoRA training step of `micro` sequences × seq tokens per forward takes on the engine, by
 * part. The base's embeddings and untied head are f32 or f16 row blocks of `maxBindingBytes` (default
 * WebGPU's 128 MiB) at most, norms and biases f32, the layer linears NF4 (or f32).
 * `checkpointEvery`: activation checkpointing of every n-th layer (DecoderForwardMode's), 0 = off.
 */
export function estimateDecoderTrainingMemory(
  config: DecoderConfig,
  lora: LoraConfig | null,
  micro: DecoderMicroBatch,
  base: DecoderBase,
  options: { lmHeadChunk?: number; checkpointEvery?: number; maxBindingBytes?: number } = {},
): MemoryEstimate {
  if (!(Number.isInteger(micro.sequences) && micro.sequences > 0 && Number.isInteger(micro.seq) && micro.seq > 0)) {
    throw new Error(`a decoder micro-batch needs whole positive sequences and length, got ${micro.sequences} × ${micro.seq}`);
  }
  if (micro.seq > config.maxSequenceLength) throw new Error(`sequence length ${micro.seq} exceeds the model's ${config.maxSequenceLength} positions`);
  const pool = new PoolReplay();
  replayBase(pool, config, base, options.maxBindingBytes ?? DEFAULT_BINDING_BYTES);
  const baseWeights = pool.held;
  const baseLargest = pool.largest;
  const adapter = replayAdapter(pool, config, lora);
  const beforeStep = pool.held;
  pool.largest = 0;
  replayStep(pool, config, rankOf(lora), micro, options.lmHeadChunk ?? DEFAULT_LM_HEAD_CHUNK, options.checkpointEvery ?? 0, base.baseParts ?? 'f32');
  return {
    baseWeights,
    ...adapter,
    activations: pool.held - beforeStep,
    total: pool.held,
    largestBuffer: Math.max(baseLargest, pool.largest),
    largestActivationBuffer: pool.largest,
  };
}

export interface DecoderPlanRequest {
  config: DecoderConfig;
  lora: LoraConfig | null;
  /** Sequences per optimizer step and their (padded) length. */
  shape: DecoderMicroBatch;
  base: DecoderBase;
  budgetBytes: number;
  /** The device's largest binding: every activation buffer must fit, and the embeddings are split to it. */
  maxBufferBytes?: number;
  /** Storage precisions of the embeddings and head to try, preferred first (default base.baseParts, or f32). */
  storages?: StoragePrecision[];
  /** Sequences per micro-batch chosen by the user: the plan only chooses the rest. */
  microBatch?: number;
  /** Checkpoint interval chosen by the user (0 = off): the plan only chooses the rest. */
  checkpointEvery?: number;
  lmHeadChunk?: number;
}

export interface DecoderMemoryPlan {
  /** Storage of the embeddings and untied head (DecoderBaseOptions.baseParts). */
  baseParts: StoragePrecision;
  /** Sequences per forward and backward. */
  microBatch: number;
  /** Micro-batches per optimizer step (gradient accumulation). */
  microBatches: number;
  /** Activation checkpointing of every n-th layer; 0 = off. */
  checkpointEvery: number;
  estimate: MemoryEstimate;
  /** Estimated step time relative to the whole step in one micro-batch without checkpointing. */
  relativeTime: number;
  fits: boolean;
}

/**
 * Time of a layout relative to the whole step in one micro-batch without checkpointing, counting a
 * layer's forward as 1 and its backward as 2 per token: checkpointing adds the forward of the layers
 * it recomputes (their share of the layers), and each micro-batch costs PASS_OVERHEAD_TOKENS more
 * tokens (launches, an underfilled GPU). The LM head counts as the layers do.
 */
function relativeTime(config: DecoderConfig, shape: DecoderMicroBatch, microBatches: number, checkpointEvery: number): number {
  const layers = config.numHiddenLayers;
  const work = 3 + checkpointedLayers(layers, checkpointEvery) / layers;
  const tokens = shape.sequences * shape.seq;
  return (work * (tokens + microBatches * PASS_OVERHEAD_TOKENS)) / (3 * (tokens + PASS_OVERHEAD_TOKENS));
}

/** Checkpoint intervals worth trying: off, then each n that checkpoints a different number of layers. */
function checkpointChoices(layers: number): number[] {
  const choices = [0];
  for (let every = layers; every >= 1; every--) {
    if (checkpointedLayers(layers, every) !== checkpointedLayers(layers, choices[choices.length - 1])) choices.push(every);
  }
  return choices;
}

/**
 * The fastest layout (relativeTime) among micro-batch sizes × checkpoint intervals whose estimate
 * fits the budget and whose activation buffers fit the device, in the first storage of the
 * embeddings and head that has one (f16 costs accuracy, not time, so it is tried only when listed);
 * if none fits, the one that needs least memory, with `fits` false. The loss and gradients are the
 * whole step's whatever is chosen.
 */
export function planDecoderTraining(request: DecoderPlanRequest): DecoderMemoryPlan {
  const { config, shape, budgetBytes } = request;
  if (!(budgetBytes > 0)) throw new Error(`the memory budget must be a positive number of bytes, got ${budgetBytes}`);
  if (request.microBatch !== undefined && !(Number.isInteger(request.microBatch) && request.microBatch > 0)) {
    throw new Error(`the micro-batch must be a positive whole number of sequences, got ${request.microBatch}`);
  }
  if (request.checkpointEvery !== undefined && !(Number.isInteger(request.checkpointEvery) && request.checkpointEvery >= 0)) {
    throw new Error(`the checkpoint interval must be a whole number of layers ≥ 0, got ${request.checkpointEvery}`);
  }
  const maxBuffer = request.maxBufferBytes ?? Number.POSITIVE_INFINITY;
  const options = { lmHeadChunk: request.lmHeadChunk, maxBindingBytes: request.maxBufferBytes };
  const plan = (baseParts: StoragePrecision, microBatch: number, checkpointEvery: number): DecoderMemoryPlan => {
    const micro = { sequences: microBatch, seq: shape.seq };
    const estimate = estimateDecoderTrainingMemory(config, request.lora, micro, { ...request.base, baseParts }, { ...options, checkpointEvery });
    const microBatches = Math.ceil(shape.sequences / microBatch);
    return {
      baseParts,
      microBatch,
      microBatches,
      checkpointEvery,
      estimate,
      relativeTime: relativeTime(config, shape, microBatches, checkpointEvery),
      fits: estimate.total <= budgetBytes && estimate.largestActivationBuffer <= maxBuffer,
    };
  };
  // Micro-batch sizes: every one that changes the number of micro-batches, or the one asked for.
  const sizes: number[] = [];
  for (let microBatches = 1; microBatches <= shape.sequences; microBatches++) {
    const size = Math.ceil(shape.sequences / microBatches);
    if (size !== sizes[sizes.length - 1]) sizes.push(size);
  }
  const microBatches = request.microBatch !== undefined ? [Math.min(request.microBatch, shape.sequences)] : sizes;
  const intervals = request.checkpointEvery !== undefined ? [request.checkpointEvery] : checkpointChoices(config.numHiddenLayers);
  const storages = request.storages ?? [request.base.baseParts ?? 'f32'];
  if (storages.length === 0) throw new Error('the plan needs at least one storage precision to try');
  let smallest: DecoderMemoryPlan | null = null;
  for (const storage of storages) {
    let best: DecoderMemoryPlan | null = null;
    for (const microBatch of microBatches) {
      for (const every of intervals) {
        const p = plan(storage, microBatch, every);
        if (p.fits && (!best || p.relativeTime < best.relativeTime)) best = p;
        if (!smallest || p.estimate.total < smallest.estimate.total) smallest = p;
      }
    }
    if (best) return best;
  }
  return smallest!;
}

/** One line for people: the plan's micro-batches and its estimate against the budget. */
export function describeDecoderPlan(plan: DecoderMemoryPlan, budgetBytes: number): string {
  const n = plan.estimate;
  const layout = [
    plan.microBatches === 1 ? 'the whole step in one micro-batch' : `${plan.microBatches} micro-batches of ${plan.microBatch} sequences (gradient accumulation)`,
    plan.checkpointEvery === 0 ? 'no checkpointing' : plan.checkpointEvery === 1 ? 'every layer checkpointed' : `1 layer in ${plan.checkpointEvery} checkpointed`,
    `${plan.baseParts} embeddings and head`,
  ].join(', ');
  const verdict = plan.fits ? `of a ${formatBytes(budgetBytes)} budget` : `— over the ${formatBytes(budgetBytes)} budget even so`;
  return `memory plan: ${layout}; estimate ${formatBytes(n.total)} ${verdict} (base ${formatBytes(n.baseWeights)}, LoRA and AdamW ${formatBytes(n.loraParameters + n.loraGradients + n.optimizerState)}, activations ${formatBytes(n.activations)})`;
}
