/**
 * A Llama-architecture decoder on the GPU engine (Llama 3.x, Qwen2/2.5, Qwen3, SmolLM2, Mistral,
 * Phi-3; decoder-config.ts, weights read by decoder-weights.ts): frozen base with the layer linears in NF4 or f32, the
 * embeddings and LM head in f32 or f16 row blocks that each fit a binding (stored.ts), norms and
 * biases in f32; a stack of LoRA adapters (frozen ones under at most one
 * trainable one); forward with saved activations, the causal-LM loss through the chunked LM head,
 * and backward into the trainable adapter's gradients only. With checkpointing, every n-th layer
 * keeps only its input and is run again inside backward.
 *
 * Per layer, as Hugging Face's LlamaDecoderLayer: x += o_proj(attn(RoPE(qkNorm(q)), RoPE(qkNorm(k)), v))
 * of RMSNorm(x), then x += down_proj(silu(gate_proj(n))·up_proj(n)) with n = RMSNorm(x); the model
 * ends with RMSNorm. Positions are 0..T-1 in every row (right padding; Hugging Face's default
 * position ids). Dropout is off (the families' attention_dropout is 0); LoRA dropout applies.
 *
 * For generation, `forwardCached` runs new tokens of one sequence through the same layers with
 * their keys and values appended to a per-layer KV cache, and `logits` applies the LM head to the
 * last position only.
 */
import type { Engine } from '../engine/engine.ts';
import { type StoragePrecision, type StoredMatrix, releaseStored, storeMatrix } from '../engine/stored.ts';
import type { Tensor } from '../engine/tensor.ts';
import {
  type CausalAttentionShape,
  type KvCache,
  appendKvCache,
  causalAttentionBackward,
  causalAttentionForward,
  createKvCache,
  decodeAttentionForward,
} from '../engine/ops/causal-attention.ts';
import { add } from '../engine/ops/elementwise.ts';
import { embeddingForward } from '../engine/ops/embedding.ts';
import { halfWords } from '../engine/ops/half.ts';
import { IGNORE_INDEX, type LmTargets, lmHeadLogits, lmHeadLossBackward, lmHeadLossForward, uploadLmTargets } from '../engine/ops/lm-head-loss.ts';
import { rmsNormBackward, rmsNormForward } from '../engine/ops/rmsnorm.ts';
import { type RopeTable, createRopeTable, ropeBackward, ropeForward, uploadRopePositions } from '../engine/ops/rope.ts';
import { swigluBackward, swigluForward } from '../engine/ops/swiglu.ts';
import { uploadNf4 } from '../engine/ops/nf4.ts';
import { type AdaptedStep, type BaseQuantization, type Linear, createLinear, linearBackward, linearForward, releaseLinear, siteSeed } from './adapted-linear.ts';
import { reshape } from './bert.ts';
import type { DecoderConfig } from './decoder-config.ts';
import { decoderModuleName } from './decoder-lora.ts';
import { DECODER_LINEARS, type DecoderLinear, type DecoderTensor, type DecoderWeightReader } from './decoder-weights.ts';
import type { GpuLoraModules } from './lora.ts';

export interface DecoderBatch {
  inputIds: Uint32Array;
  /** 1 for real tokens, 0 for padding (right padding). */
  attentionMask: Float32Array;
  batch: number;
  seq: number;
}

export interface DecoderBaseOptions {
  quantization: BaseQuantization;
  doubleQuant?: boolean;
  /**
   * Storage of the token embeddings and the untied LM head (default f32). f16 halves them (Qwen2.5's
   * 151,936 × 896 table: 545 MB → 272 MB); kernels still compute in f32. Norms and biases stay f32.
   */
  baseParts?: StoragePrecision;
}

export interface DecoderForwardMode {
  /** Save activations for backward. */
  train: boolean;
  /** Seed of the step's LoRA dropout masks. */
  seed: number;
  /**
   * Activation checkpointing (with `train`): every n-th layer (0, n, 2n, …) keeps only its input and
   * runs its forward again inside backward, with the same LoRA dropout masks (seeded by step and
   * site); 0 or absent = every layer keeps its activations.
   */
  checkpointEvery?: number;
}

/** Whether layer `layer` keeps only its input when checkpointing every `every`-th (0: none). */
export function isCheckpointedLayer(layer: number, every: number): boolean {
  return every > 0 && layer % every === 0;
}

/** Vocabulary rows per chunk of the LM-head loss: logits [tokens, chunk] exist at a time. */
export const DEFAULT_LM_HEAD_CHUNK = 8192;

interface DecoderLayer {
  linears: Record<DecoderLinear, Linear>;
  inputNorm: Tensor;
  postAttentionNorm: Tensor;
  /** Qwen3's per-head RMSNorm weights [headDim], or null. */
  qNorm: Tensor | null;
  kNorm: Tensor | null;
}

/** Activations one layer keeps for its backward pass. */
interface DecoderLayerCache {
  x: Tensor;
  rstd1: Tensor;
  n1: Tensor;
  /** q and k as projected, and the per-head rstd of their norm (Qwen3), else null. */
  qNormed: { q: Tensor; k: Tensor; rstdQ: Tensor; rstdK: Tensor } | null;
  /** q and k after RoPE, as attention read them. */
  q: Tensor;
  k: Tensor;
  v: Tensor;
  context: Tensor;
  lse: Tensor;
  h: Tensor;
  rstd2: Tensor;
  n2: Tensor;
  gate: Tensor;
  up: Tensor;
  act: Tensor;
  xa: Map<string, Tensor>;
}

/** What a layer keeps between forward and backward: its activations, or (checkpointed) its input only. */
type SavedLayer = DecoderLayerCache | { input: Tensor };

export interface DecoderForwardResult {
  /** Hidden states after the final norm [B·T, H] (what the LM head reads). */
  hidden: Tensor;
  /** The last layer's output [B·T, H] and the final norm's rstd, for the backward. */
  preNorm: Tensor;
  rstd: Tensor;
  mask: Tensor;
  positions: Tensor;
  batch: number;
  seq: number;
  mode: DecoderForwardMode;
  caches: SavedLayer[] | null;
}

/**
 * The keys and values of every layer for generating one sequence: `length` positions are filled,
 * `capacity` can be. mask [1, capacity] is all ones: the attention's causal limit keeps each query
 * off the rows not yet written.
 */
export interface DecoderKvCache {
  layers: KvCache[];
  mask: Tensor;
  capacity: number;
  length: number;
}

/**
 * What every layer of one pass shares: the key mask, the token positions with the RoPE table they
 * index, the shape and mode, and where attention reads its keys: the pass's own k, v (kv null: the
 * whole sequence at once) or a KV cache, after appending them at `start`.
 */
interface LayerRun {
  mask: Tensor;
  positions: Tensor;
  /** The RoPE table `positions` were checked against. */
  table: RopeTable;
  batch: number;
  seq: number;
  mode: DecoderForwardMode;
  kv: { cache: DecoderKvCache; start: number } | null;
}

/** The loss of a forward through the LM head: loss [1], each row's −log p(target) and log-sum-exp [B·T]. */
export interface DecoderLoss {
  loss: Tensor;
  tokenLoss: Tensor;
  lse: Tensor;
  targets: LmTargets;
}

/**
 * Next-token targets of a right-padded batch, one per hidden row: row (b, t) predicts token t+1
 * when that token is real, else IGNORE_INDEX (as Hugging Face's labels = input_ids with −100 at
 * padding, shifted by one).
 */
export function causalLmTargets(batch: DecoderBatch): Int32Array {
  const { batch: b, seq: t, inputIds, attentionMask } = batch;
  const targets = new Int32Array(b * t).fill(IGNORE_INDEX);
  for (let row = 0; row < b; row++) {
    for (let j = 0; j + 1 < t; j++) {
      if (attentionMask[row * t + j + 1] !== 0) targets[row * t + j] = inputIds[row * t + j + 1];
    }
  }
  return targets;
}

export class DecoderModel {
  private readonly layers: DecoderLayer[] = [];
  private rope: RopeTable | null = null;
  /** Adapters applied in order; at most one (the last) is trainable. */
  adapters: GpuLoraModules[] = [];

  private constructor(
    readonly engine: Engine,
    readonly config: DecoderConfig,
    readonly quantization: BaseQuantization,
    private readonly embedTokens: StoredMatrix,
    private readonly finalNorm: Tensor,
    /** lm_head.weight, or the embedding matrix when tied. */
    private readonly lmHead: StoredMatrix,
  ) {}

  /**
   * Upload a checkpoint layer by layer from its reader (canonical names, Phi-3's fused projections
   * already cut): f32 layer linears are quantised to NF4 on the GPU unless f32 is asked for, and a
   * bitsandbytes 4-bit checkpoint's NF4 weights are used as they are.
   */
  static async create(engine: Engine, config: DecoderConfig, reader: DecoderWeightReader, options: DecoderBaseOptions): Promise<DecoderModel> {
    const host = (tensors: Map<string, DecoderTensor>, name: string) => {
      const t = tensors.get(name);
      if (!t) throw new Error(`missing weight ${name}`);
      if (t.format !== 'f32') throw new Error(`weight ${name} is quantised; only the layer linears may be`);
      return t.tensor;
    };
    const f32 = (tensors: Map<string, DecoderTensor>, name: string): Tensor => {
      const t = host(tensors, name);
      return engine.upload(t.data, t.shape, 'f32', name, 'exact'); // held for the model's life: exact size
    };
    const globals = await reader.readGlobals();
    // The [V, H] matrices in row blocks that fit a binding, each block held for the model's life.
    const stored = (name: string): StoredMatrix => {
      const t = host(globals, name);
      return storeMatrix(engine, name, t.data, [t.shape[0], t.shape[1]], options.baseParts ?? 'f32', 'exact');
    };
    const embed = stored('model.embed_tokens.weight');
    const head = config.tieWordEmbeddings ? embed : stored('lm_head.weight');
    const model = new DecoderModel(engine, config, options.quantization, embed, f32(globals, 'model.norm.weight'), head);
    for await (const { layer: i, tensors } of reader.layers()) {
      const linears = {} as Record<DecoderLinear, Linear>;
      for (const linear of DECODER_LINEARS) {
        const name = decoderModuleName(i, linear);
        const weight = tensors.get(`${name}.weight`);
        if (!weight) throw new Error(`missing weight ${name}.weight`);
        const bias = tensors.has(`${name}.bias`) ? f32(tensors, `${name}.bias`) : null;
        linears[linear] =
          weight.format === 'nf4'
            ? { name, in: weight.shape[1], out: weight.shape[0], base: { kind: 'nf4', weight: uploadNf4(engine, weight.shape, weight.nf4) }, bias }
            : await createLinear(engine, name, f32(tensors, `${name}.weight`), bias, options);
      }
      const p = `model.layers.${i}`;
      const headNorm = (which: 'q_norm' | 'k_norm') => (config.qkNorm ? f32(tensors, `${p}.self_attn.${which}.weight`) : null);
      model.layers.push({
        linears,
        inputNorm: f32(tensors, `${p}.input_layernorm.weight`),
        postAttentionNorm: f32(tensors, `${p}.post_attention_layernorm.weight`),
        qNorm: headNorm('q_norm'),
        kNorm: headNorm('k_norm'),
      });
      engine.flush();
    }
    return model;
  }

  /** Row blocks the token embeddings are stored in (more than 1 where the device's binding is smaller than the table). */
  get embeddingBlocks(): number {
    return this.embedTokens.blocks.length;
  }

  get trainableAdapter(): GpuLoraModules | null {
    const last = this.adapters[this.adapters.length - 1];
    return last?.trainable ? last : null;
  }

  /** The RoPE table, grown to cover `positions` positions. */
  private ropeTable(positions: number): RopeTable {
    if (this.rope && this.rope.positions >= positions) return this.rope;
    if (this.rope) this.engine.release(this.rope.cosSin);
    const { headDim, ropeTheta, ropeScaling: s } = this.config;
    const scaling = s ? { factor: s.factor, lowFreqFactor: s.lowFreqFactor, highFreqFactor: s.highFreqFactor, originalMaxPositions: s.originalMaxPositionEmbeddings } : undefined;
    this.rope = createRopeTable(this.engine, { headDim, theta: ropeTheta, scaling }, positions);
    return this.rope;
  }

  /** Run the decoder. With mode.train the activations are kept for `backward`; release with `releaseForward`. */
  forward(batch: DecoderBatch, mode: DecoderForwardMode): DecoderForwardResult {
    const { engine, config } = this;
    const { batch: b, seq: t } = batch;
    const m = b * t;
    const h = config.hiddenSize;
    if (batch.inputIds.length !== m || batch.attentionMask.length !== m) throw new Error(`decoder batch arrays must hold batch×seq = ${m} entries`);
    if (t > config.maxSequenceLength) throw new Error(`sequence length ${t} exceeds the model's ${config.maxSequenceLength} positions`);
    let x = this.embed(batch.inputIds, b, t);
    const mask = engine.upload(batch.attentionMask, [b, t]);
    const table = this.ropeTable(t);
    const positions = uploadRopePositions(engine, table, Array.from({ length: m }, (_, row) => row % t));

    const caches: SavedLayer[] | null = mode.train ? [] : null;
    const run: LayerRun = { mask, positions, table, batch: b, seq: t, mode, kv: null };
    for (let i = 0; i < this.layers.length; i++) {
      const { output, cache } = this.layerForward(i, x, run, caches !== null && !isCheckpointedLayer(i, mode.checkpointEvery ?? 0));
      if (caches) caches.push(cache ?? { input: x });
      else engine.release(x);
      x = output;
    }
    const hidden = engine.alloc([m, h]);
    const rstd = engine.alloc([m]);
    rmsNormForward(engine, x, this.finalNorm, hidden, rstd, config.rmsNormEps);
    return { hidden, preNorm: x, rstd, mask, positions, batch: b, seq: t, mode, caches };
  }

  /** A KV cache for one sequence of up to `capacity` positions (at most the model's), empty; release with `releaseKvCache`. */
  createKvCache(capacity: number): DecoderKvCache {
    const { engine, config } = this;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > config.maxSequenceLength) {
      throw new Error(`KV cache capacity must be an integer in [1, ${config.maxSequenceLength}] (the model's positions), got ${capacity}`);
    }
    this.ropeTable(capacity); // grown once here, not per step
    const dims = { batch: 1, capacity, kvHeads: config.numKeyValueHeads, headDim: config.headDim };
    const layers = this.layers.map(() => createKvCache(engine, dims));
    const mask = engine.upload(new Float32Array(capacity).fill(1), [1, capacity]);
    return { layers, mask, capacity, length: 0 };
  }

  releaseKvCache(cache: DecoderKvCache): void {
    for (const layer of cache.layers) this.engine.release(layer.k, layer.v);
    this.engine.release(cache.mask);
    cache.layers = [];
  }

  /**
   * Run `ids` (one sequence's next tokens: the prompt, then one token per step) at positions
   * cache.length onwards, their keys and values appended to the cache, and return the final norm's
   * output at the last of them [1, H] (no LoRA dropout: inference).
   */
  forwardCached(cache: DecoderKvCache, ids: ArrayLike<number>): Tensor {
    const { engine, config } = this;
    const start = cache.length;
    const t = ids.length;
    if (cache.layers.length !== this.layers.length) throw new Error('forwardCached: the KV cache was released or belongs to another model');
    if (t < 1) throw new Error('forwardCached: need at least one token');
    if (start + t > cache.capacity) throw new Error(`forwardCached: positions ${start}..${start + t - 1} do not fit the KV cache's ${cache.capacity}`);
    let x = this.embed(Uint32Array.from(ids), 1, t);
    const table = this.ropeTable(cache.capacity);
    const positions = uploadRopePositions(engine, table, Array.from({ length: t }, (_, j) => start + j));
    const run: LayerRun = { mask: cache.mask, positions, table, batch: 1, seq: t, mode: { train: false, seed: 0 }, kv: { cache, start } };
    for (let i = 0; i < this.layers.length; i++) {
      const { output } = this.layerForward(i, x, run, false);
      engine.release(x);
      x = output;
    }
    cache.length = start + t;
    const h = config.hiddenSize;
    const last = engine.alloc([1, h]);
    engine.copy(x, last, { srcOffset: (t - 1) * h, count: h });
    const hidden = engine.alloc([1, h]);
    const rstd = engine.alloc([1]);
    rmsNormForward(engine, last, this.finalNorm, hidden, rstd, config.rmsNormEps);
    engine.release(x, positions, last, rstd);
    return hidden;
  }

  /**
   * Next-token logits [rows, V] of hidden states [rows, H] (the final norm's output), for
   * generation's one row: the head's blocks `chunk` rows at a time, as the loss reads them.
   */
  logits(hidden: Tensor, chunk = DEFAULT_LM_HEAD_CHUNK): Tensor {
    const out = this.engine.alloc([hidden.shape[0], this.config.vocabSize]);
    lmHeadLogits(this.engine, hidden, this.lmHead, out, { chunk });
    return out;
  }

  /**
   * The mean next-token loss over `targets` (one per hidden row, IGNORE_INDEX for none; see
   * causalLmTargets). With `stepTokens`, the sum over this batch's targets divided by the step's
   * target count instead: micro-batches' losses and gradients then add up to the step's mean.
   */
  loss(result: DecoderForwardResult, targets: ArrayLike<number>, chunk = DEFAULT_LM_HEAD_CHUNK, stepTokens?: number): DecoderLoss {
    const { engine } = this;
    const rows = result.batch * result.seq;
    const uploaded = uploadLmTargets(engine, targets, this.config.vocabSize);
    const lmTargets = stepTokens === undefined ? uploaded : { ...uploaded, count: stepTokens };
    const out = { loss: engine.alloc([1]), tokenLoss: engine.alloc([rows]), lse: engine.alloc([rows]) };
    lmHeadLossForward(engine, result.hidden, this.lmHead, lmTargets, out, { chunk });
    return { ...out, targets: lmTargets };
  }

  /** Backpropagate the mean loss of `loss` into the trainable adapter's gradients (accumulated). */
  backwardLoss(result: DecoderForwardResult, loss: DecoderLoss, chunk = DEFAULT_LM_HEAD_CHUNK): void {
    const dHidden = this.engine.alloc(result.hidden.shape);
    lmHeadLossBackward(this.engine, result.hidden, this.lmHead, loss.targets, loss.lse, dHidden, { chunk });
    this.backward(result, dHidden);
    this.engine.release(dHidden);
  }

  releaseLoss(loss: DecoderLoss): void {
    this.engine.release(loss.loss, loss.tokenLoss, loss.lse, loss.targets.ids);
  }

  /** Backpropagate dHidden [B·T, H] (of the final norm's output) into the trainable adapter's gradients (accumulated). */
  backward(result: DecoderForwardResult, dHidden: Tensor): void {
    const { engine } = this;
    if (!result.caches) throw new Error('backward needs a forward run with train: true');
    if (!this.trainableAdapter) throw new Error('backward needs a trainable adapter');
    let dy = engine.alloc(result.preNorm.shape);
    rmsNormBackward(engine, result.preNorm, this.finalNorm, result.rstd, dHidden, dy);
    const run: LayerRun = { mask: result.mask, positions: result.positions, table: this.ropeTable(result.seq), batch: result.batch, seq: result.seq, mode: result.mode, kv: null };
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const saved = result.caches[i];
      // A checkpointed layer runs its forward again, one layer at a time, for the activations.
      const recomputed = 'input' in saved ? this.layerForward(i, saved.input, run, true) : null;
      const dx = this.layerBackward(i, recomputed?.cache ?? (saved as DecoderLayerCache), dy, result, i > 0);
      if (recomputed) {
        engine.release(recomputed.output);
        this.releaseActivations(recomputed.cache!);
      }
      engine.release(dy);
      dy = dx!;
    }
  }

  releaseForward(result: DecoderForwardResult): void {
    const { engine } = this;
    engine.release(result.hidden, result.preNorm, result.rstd, result.mask, result.positions);
    for (const saved of result.caches ?? []) {
      if ('input' in saved) {
        engine.release(saved.input); // checkpointed: its input only
      } else {
        engine.release(saved.x);
        this.releaseActivations(saved);
      }
    }
    result.caches = null;
  }

  /** Everything a layer cache holds but its input. */
  private releaseActivations(c: DecoderLayerCache): void {
    const { engine } = this;
    engine.release(c.rstd1, c.n1, c.q, c.k, c.v, c.context, c.lse, c.h, c.rstd2, c.n2, c.gate, c.up, c.act);
    if (c.qNormed) engine.release(c.qNormed.q, c.qNormed.k, c.qNormed.rstdQ, c.qNormed.rstdK);
    for (const xa of c.xa.values()) engine.release(xa);
  }

  destroy(): void {
    const { engine } = this;
    releaseStored(engine, this.embedTokens);
    if (this.lmHead !== this.embedTokens) releaseStored(engine, this.lmHead);
    engine.release(this.finalNorm, this.rope?.cosSin);
    for (const layer of this.layers) {
      for (const lin of Object.values(layer.linears)) releaseLinear(engine, lin);
      engine.release(layer.inputNorm, layer.postAttentionNorm, layer.qNorm, layer.kNorm);
    }
    for (const a of this.adapters) a.release();
    this.layers.length = 0;
    this.rope = null;
  }

  // ---------------------------------------------------------------- layers

  /** Token embeddings [B·T, H] of ids [B, T], each checked against the vocabulary. */
  private embed(inputIds: Uint32Array, b: number, t: number): Tensor {
    const { engine, config } = this;
    const h = config.hiddenSize;
    const badId = inputIds.findIndex((id) => id >= config.vocabSize);
    if (badId >= 0) throw new Error(`token id ${inputIds[badId]} at row ${Math.floor(badId / t)}, column ${badId % t} is not below vocab_size ${config.vocabSize}`);
    // Llama has no position or token-type table: BERT's embedding gather with zero ones of the table's precision.
    const { precision } = this.embedTokens;
    const ids = engine.upload(inputIds, [b, t], 'u32');
    const zeroIds = engine.alloc([b, t], 'u32', true);
    const zeroData = precision === 'f32' ? engine.alloc([t, h], 'f32', true) : engine.alloc([halfWords(t * h)], 'u32', true);
    const zeroRows: StoredMatrix = { name: 'no positions or token types', rows: t, cols: h, precision, blocks: [{ firstRow: 0, rows: t, data: zeroData }] };
    const embedded = engine.alloc([b, t, h]);
    embeddingForward(engine, ids, zeroIds, this.embedTokens, zeroRows, zeroRows, embedded);
    engine.release(ids, zeroIds, zeroData);
    return reshape(embedded, [b * t, h]);
  }

  private attentionShape(b: number, t: number): CausalAttentionShape {
    const { numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim } = this.config;
    return { batch: b, seq: t, heads, kvHeads, headDim };
  }

  /** `saved` receives the trainable adapter's X·Aᵀ (null: nothing kept). */
  private step(mode: DecoderForwardMode, layer: number, site: number, saved: Map<string, Tensor> | null): AdaptedStep {
    return { adapters: this.adapters, train: mode.train, seed: siteSeed(mode.seed, (layer + 1) * 16 + site), saved };
  }

  /** One layer's forward; with `save` it returns the activations its backward needs. */
  private layerForward(i: number, x: Tensor, run: LayerRun, save: boolean) {
    const { engine, config } = this;
    const layer = this.layers[i];
    const m = run.batch * run.seq;
    const h = config.hiddenSize;
    const xa = new Map<string, Tensor>();
    const lin = (linear: DecoderLinear, input: Tensor) => linearForward(engine, layer.linears[linear], input, this.step(run.mode, i, DECODER_LINEARS.indexOf(linear), save ? xa : null));
    const shape = this.attentionShape(run.batch, run.seq);

    const rstd1 = engine.alloc([m]);
    const n1 = engine.alloc([m, h]);
    rmsNormForward(engine, x, layer.inputNorm, n1, rstd1, config.rmsNormEps);
    const qProj = lin('self_attn.q_proj', n1);
    const kProj = lin('self_attn.k_proj', n1);
    const v = lin('self_attn.v_proj', n1);
    let qNormed: DecoderLayerCache['qNormed'] = null;
    let qIn = qProj;
    let kIn = kProj;
    if (layer.qNorm && layer.kNorm) {
      const headNorm = (proj: Tensor, weight: Tensor, heads: number) => {
        const rows = m * heads;
        const out = engine.alloc(proj.shape);
        const rstd = engine.alloc([rows]);
        rmsNormForward(engine, reshape(proj, [rows, config.headDim]), weight, reshape(out, [rows, config.headDim]), rstd, config.rmsNormEps);
        return { out, rstd };
      };
      const qn = headNorm(qProj, layer.qNorm, shape.heads);
      const kn = headNorm(kProj, layer.kNorm, shape.kvHeads);
      qNormed = { q: qProj, k: kProj, rstdQ: qn.rstd, rstdK: kn.rstd };
      qIn = qn.out;
      kIn = kn.out;
    }
    const { table } = run;
    const q = engine.alloc(qIn.shape);
    const k = engine.alloc(kIn.shape);
    ropeForward(engine, qIn, run.positions, table, q, shape.heads);
    ropeForward(engine, kIn, run.positions, table, k, shape.kvHeads);
    if (qNormed) engine.release(qIn, kIn);
    else engine.release(qProj, kProj);

    const context = engine.alloc(q.shape);
    // Only the whole-sequence attention saves lse; cached runs are never training ones (forwardCached).
    let lse: Tensor | null = null;
    if (run.kv) {
      // Generation: these tokens' keys and values join the cache, and the queries attend all of it so far.
      const cache = run.kv.cache.layers[i];
      appendKvCache(engine, cache, k, v, run.kv.start);
      decodeAttentionForward(engine, q, cache, run.mask, context, shape.heads, run.kv.start);
    } else {
      lse = engine.alloc([run.batch, shape.heads, run.seq]);
      causalAttentionForward(engine, q, k, v, run.mask, context, lse, shape);
    }
    const attnOut = lin('self_attn.o_proj', context);
    const hState = engine.alloc([m, h]);
    add(engine, attnOut, x, hState);
    engine.release(attnOut);

    const rstd2 = engine.alloc([m]);
    const n2 = engine.alloc([m, h]);
    rmsNormForward(engine, hState, layer.postAttentionNorm, n2, rstd2, config.rmsNormEps);
    const gate = lin('mlp.gate_proj', n2);
    const up = lin('mlp.up_proj', n2);
    const act = engine.alloc(gate.shape);
    swigluForward(engine, gate, up, act);
    const output = lin('mlp.down_proj', act);
    add(engine, output, hState, output);

    const cache: DecoderLayerCache = { x, rstd1, n1, qNormed, q, k, v, context, lse: lse!, h: hState, rstd2, n2, gate, up, act, xa };
    if (save) return { output, cache };
    engine.release(rstd1, n1, q, k, v, context, lse, hState, rstd2, n2, gate, up, act);
    if (qNormed) engine.release(qNormed.q, qNormed.k, qNormed.rstdQ, qNormed.rstdK);
    return { output, cache: null };
  }

  /** Returns dX of the layer input when `needInputGrad`, else null. dOut is the gradient of the layer's output. */
  private layerBackward(i: number, c: DecoderLayerCache, dOut: Tensor, result: DecoderForwardResult, needInputGrad: boolean): Tensor | null {
    const { engine, config } = this;
    const layer = this.layers[i];
    const m = result.batch * result.seq;
    const h = config.hiddenSize;
    const shape = this.attentionShape(result.batch, result.seq);
    // `accumulate`: dIn already holds a gradient to add to; otherwise it is overwritten.
    const back = (linear: DecoderLinear, input: Tensor, dy: Tensor, dIn: Tensor | null, accumulate: boolean) =>
      linearBackward(engine, layer.linears[linear], input, dy, dIn, accumulate, this.step(result.mode, i, DECODER_LINEARS.indexOf(linear), c.xa));

    // MLP: out = h + down(swiglu(gate(n2), up(n2))), n2 = RMSNorm(h)
    const dAct = engine.alloc(c.act.shape);
    back('mlp.down_proj', c.act, dOut, dAct, false);
    const dGate = engine.alloc(c.gate.shape);
    const dUp = engine.alloc(c.up.shape);
    swigluBackward(engine, c.gate, c.up, dAct, dGate, dUp);
    engine.release(dAct);
    const dn2 = engine.alloc([m, h]);
    back('mlp.gate_proj', c.n2, dGate, dn2, false);
    back('mlp.up_proj', c.n2, dUp, dn2, true);
    engine.release(dGate, dUp);
    const dh = engine.alloc([m, h]);
    rmsNormBackward(engine, c.h, layer.postAttentionNorm, c.rstd2, dn2, dh);
    add(engine, dh, dOut, dh); // the residual branch
    engine.release(dn2);

    // Attention: h = x + o(attn(q, k, v)), q, k, v from n1 = RMSNorm(x)
    const dContext = engine.alloc(c.context.shape);
    back('self_attn.o_proj', c.context, dh, dContext, false);
    let dqRot = engine.alloc(c.q.shape);
    let dkRot = engine.alloc(c.k.shape);
    const dv = engine.alloc(c.v.shape);
    causalAttentionBackward(engine, c.q, c.k, c.v, result.mask, c.context, c.lse, dContext, dqRot, dkRot, dv, shape);
    engine.release(dContext);
    const table = this.ropeTable(result.seq);
    let dq = engine.alloc(c.q.shape);
    let dk = engine.alloc(c.k.shape);
    ropeBackward(engine, dqRot, result.positions, table, dq, shape.heads);
    ropeBackward(engine, dkRot, result.positions, table, dk, shape.kvHeads);
    if (c.qNormed && layer.qNorm && layer.kNorm) {
      const headNormGrad = (proj: Tensor, weight: Tensor, rstd: Tensor, dNormed: Tensor, dProj: Tensor) => {
        const view = (t: Tensor) => reshape(t, [rstd.shape[0], config.headDim]);
        rmsNormBackward(engine, view(proj), weight, rstd, view(dNormed), view(dProj));
      };
      headNormGrad(c.qNormed.q, layer.qNorm, c.qNormed.rstdQ, dq, dqRot);
      headNormGrad(c.qNormed.k, layer.kNorm, c.qNormed.rstdK, dk, dkRot);
      [dq, dqRot] = [dqRot, dq];
      [dk, dkRot] = [dkRot, dk];
    }
    engine.release(dqRot, dkRot);

    const dn1 = needInputGrad ? engine.alloc([m, h]) : null;
    back('self_attn.q_proj', c.n1, dq, dn1, false);
    back('self_attn.k_proj', c.n1, dk, dn1, true);
    back('self_attn.v_proj', c.n1, dv, dn1, true);
    engine.release(dq, dk, dv);
    if (!dn1) {
      engine.release(dh);
      return null;
    }
    const dx = engine.alloc([m, h]);
    rmsNormBackward(engine, c.x, layer.inputNorm, c.rstd1, dn1, dx);
    add(engine, dx, dh, dx);
    engine.release(dn1, dh);
    return dx;
  }
}
