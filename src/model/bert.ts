/**
 * A BERT encoder on the GPU engine: frozen base (encoder linears in NF4 or f32; embeddings and
 * LayerNorms stored in f32 or f16 and computed in f32, the word table in row blocks that each fit
 * the device's storage binding limit), a stack of LoRA adapters (frozen ones under at most one
 * trainable one), forward with saved activations (f32, or packed f16: saved-tensor.ts) and backward
 * into the trainable adapter's gradients only.
 *
 * Attention-probability dropout is not applied (hidden and embedding dropout are); with dropout off
 * the forward matches Hugging Face's BertModel, and RobertaModel, XLMRobertaModel and DistilBertModel
 * through the canonical layout (families.ts). RoBERTa's positions count only non-padding tokens; with
 * right padding that differs from counting columns only at padding, whose outputs nothing reads.
 */
import type { Engine } from '../engine/engine.ts';
import { type SavedTensor, releaseSaved, saveTensor, withSaved } from '../engine/saved-tensor.ts';
import { type StoragePrecision, type StoredMatrix, releaseStored, storeMatrix } from '../engine/stored.ts';
import type { Tensor } from '../engine/tensor.ts';
import { geluBackward, geluBackwardPacked, geluForward } from '../engine/ops/activation.ts';
import { type AttentionShape, attentionBackward, attentionForward } from '../engine/ops/attention.ts';
import { dropoutBackward, dropoutForward } from '../engine/ops/dropout.ts';
import { add } from '../engine/ops/elementwise.ts';
import { embeddingForward } from '../engine/ops/embedding.ts';
import { layerNormBackward, layerNormForward } from '../engine/ops/layernorm.ts';
import { type AdaptedStep, type BaseQuantization, type Linear, createLinear, linearBackward, linearForward, releaseLinear, siteSeed, trainsLinear } from './adapted-linear.ts';
import type { BertConfig } from './config.ts';
import { type GpuAdapter, LINEAR_SUFFIXES, type LinearSuffix, moduleName } from './lora.ts';
import type { StateDict } from './state-dict.ts';

export interface TokenBatch {
  inputIds: Uint32Array;
  tokenTypeIds: Uint32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Float32Array;
  batch: number;
  seq: number;
}

export type { BaseQuantization } from './adapted-linear.ts';

export interface BaseOptions {
  quantization: BaseQuantization;
  doubleQuant?: boolean;
  /**
   * Storage of the embedding tables and LayerNorm gammas/betas (default f32). f16 halves their memory
   * (BERT-large's word table: 118 MB → 59 MB); the kernels still compute in f32. Accuracy cost on the
   * test fixtures: tests/model/half-base.gpu.test.ts.
   */
  baseParts?: StoragePrecision;
}

export interface ForwardMode {
  /** Training forward: LoRA dropout on, and activations saved for backward (unless `noGrad`). */
  train: boolean;
  /** BERT hidden/embedding dropout probability (0 = off) and the step's seed (also drives LoRA dropout). */
  hiddenDropout: number;
  seed: number;
  /** With `train`: the training forward's dropout, but nothing saved (the first pass of a cached step). */
  noGrad?: boolean;
  /**
   * Index of this batch's first sequence in the step's whole batch, when the batch is a slice of it
   * with the same padded length (default 0): dropout masks are drawn for each element's place in the
   * whole batch, so a sequence drops the same units whichever slice it is run in.
   */
  firstSequence?: number;
  /**
   * Activation checkpointing: every n-th layer (0, n, 2n, …) keeps only its input and recomputes its
   * forward inside backward; 0 or absent = every layer keeps its activations.
   */
  checkpointEvery?: number;
  /**
   * Precision of the activations kept for backward (default f32): f16 halves them, computing still in
   * f32. Accuracy cost on the test fixtures: tests/model/half-activations.gpu.test.ts.
   */
  storage?: StoragePrecision;
}

/** Whether a forward in `mode` saves what backward needs. */
function savesActivations(mode: ForwardMode): boolean {
  return mode.train && !mode.noGrad;
}

function isCheckpointed(layer: number, mode: ForwardMode): boolean {
  const every = mode.checkpointEvery ?? 0;
  return every > 0 && layer % every === 0;
}

interface LayerNormParams {
  gamma: StoredMatrix;
  beta: StoredMatrix;
}

interface Layer {
  linears: Record<LinearSuffix, Linear>;
  ln1: LayerNormParams;
  ln2: LayerNormParams;
}

/**
 * Activations one layer keeps for its backward pass besides its input, in the step's storage
 * precision; LayerNorm's per-row mean and 1/σ stay f32 (a few bytes a row, and rstd scales every
 * gradient of the row). The inputs of the attention output, intermediate and output linears
 * (context, y1, g) are kept only when the trainable adapter adapts that linear: a frozen linear's
 * backward needs its weight, not its input (dX = dY·W). Backward releases each as soon as it has
 * read it for the last time (null after).
 */
interface LayerActivations {
  q: SavedTensor | null;
  k: SavedTensor | null;
  v: SavedTensor | null;
  probs: SavedTensor | null;
  context: SavedTensor | null;
  h1: SavedTensor | null;
  y1: SavedTensor | null;
  u: SavedTensor | null;
  g: SavedTensor | null;
  h2: SavedTensor | null;
  mean1: Tensor;
  rstd1: Tensor;
  mean2: Tensor;
  rstd2: Tensor;
  /** LoRA X·Aᵀ of the trainable adapter, by module name. */
  xa: Map<string, SavedTensor>;
}

/** The activations a layer's backward reads and then releases. */
type KeptActivation = 'q' | 'k' | 'v' | 'probs' | 'context' | 'h1' | 'y1' | 'u' | 'g' | 'h2';

/** What a layer keeps between forward and backward: its input, and its activations unless checkpointed (then recomputed in backward). */
export interface SavedLayer {
  input: SavedTensor;
  activations: LayerActivations | null;
}

export interface ForwardResult {
  /** Last hidden state [B·T, H]. */
  hidden: Tensor;
  /** Attention mask on the GPU [B, T]. */
  mask: Tensor;
  batch: number;
  seq: number;
  mode: ForwardMode;
  caches: SavedLayer[] | null;
}

export class BertEncoder {
  private readonly layers: Layer[] = [];
  private readonly embeddings: { word: StoredMatrix; position: StoredMatrix; tokenType: StoredMatrix } & LayerNormParams;
  /** Adapters applied in order; at most one (the last) is trainable. */
  adapters: GpuAdapter[] = [];

  private constructor(
    readonly engine: Engine,
    readonly config: BertConfig,
    readonly quantization: BaseQuantization,
    embeddings: BertEncoder['embeddings'],
  ) {
    this.embeddings = embeddings;
  }

  /** Upload canonical BertModel weights; encoder linears are quantised to NF4 on the GPU unless f32 is asked for. */
  static async create(engine: Engine, config: BertConfig, weights: StateDict, options: BaseOptions): Promise<BertEncoder> {
    const host = (name: string) => {
      const t = weights.get(name);
      if (!t) throw new Error(`missing weight ${name}`);
      return t;
    };
    const upload = (name: string): Tensor => engine.upload(host(name).data, host(name).shape, 'f32', name);
    // Embedding tables and LayerNorm vectors (one row) in the base parts' precision, from row firstRow on.
    const store = (name: string, firstRow = 0): StoredMatrix => {
      const t = host(name);
      const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]];
      return storeMatrix(engine, name, t.data.subarray(firstRow * cols), [rows - firstRow, cols], options.baseParts ?? 'f32');
    };
    const layerNorm = (prefix: string): LayerNormParams => ({ gamma: store(`${prefix}.weight`), beta: store(`${prefix}.bias`) });
    const encoder = new BertEncoder(engine, config, options.quantization, {
      word: store('embeddings.word_embeddings.weight'),
      // Row t of the uploaded table is the t-th token's position (RoBERTa's start at pad_token_id + 1).
      position: store('embeddings.position_embeddings.weight', config.positionOffset),
      tokenType: store('embeddings.token_type_embeddings.weight'),
      ...layerNorm('embeddings.LayerNorm'),
    });
    for (let i = 0; i < config.numHiddenLayers; i++) {
      const linears = {} as Record<LinearSuffix, Linear>;
      for (const suffix of LINEAR_SUFFIXES) {
        const name = moduleName(i, suffix);
        linears[suffix] = await createLinear(engine, name, upload(`${name}.weight`), upload(`${name}.bias`), options);
      }
      const prefix = `encoder.layer.${i}`;
      encoder.layers.push({ linears, ln1: layerNorm(`${prefix}.attention.output.LayerNorm`), ln2: layerNorm(`${prefix}.output.LayerNorm`) });
    }
    engine.flush();
    return encoder;
  }

  /** How many bindings the word table is split into: 1 unless it is larger than the device's binding limit. */
  get wordTableBlocks(): number {
    return this.embeddings.word.blocks.length;
  }

  /** Storage of the embedding tables and LayerNorms (BaseOptions.baseParts). */
  get baseParts(): StoragePrecision {
    return this.embeddings.word.precision;
  }

  get trainableAdapter(): GpuAdapter | null {
    const last = this.adapters[this.adapters.length - 1];
    return last?.trainable ? last : null;
  }

  /** Run the encoder. With mode.train the activations are kept for `backward`; release with `releaseForward`. */
  forward(batch: TokenBatch, mode: ForwardMode): ForwardResult {
    const { engine, config } = this;
    const { batch: b, seq: t } = batch;
    const m = b * t;
    const h = config.hiddenSize;
    if (batch.inputIds.length !== m || batch.tokenTypeIds.length !== m || batch.attentionMask.length !== m) {
      throw new Error(`token batch arrays must hold batch×seq = ${m} entries`);
    }
    if (t > config.maxSequenceLength) {
      const offset = config.positionOffset > 0 ? ` less the ${config.positionOffset} positions before the first token` : '';
      throw new Error(`sequence length ${t} exceeds the model's ${config.maxSequenceLength} positions (max_position_embeddings ${config.maxPositionEmbeddings}${offset})`);
    }
    const ids = engine.upload(batch.inputIds, [b, t], 'u32');
    const types = engine.upload(batch.tokenTypeIds, [b, t], 'u32');
    const mask = engine.upload(batch.attentionMask, [b, t]);
    const summed = engine.alloc([b, t, h]);
    embeddingForward(engine, ids, types, this.embeddings.word, this.embeddings.position, this.embeddings.tokenType, summed);
    engine.release(ids, types);
    let x = engine.alloc([m, h]);
    const scratchMean = engine.alloc([m]);
    const scratchRstd = engine.alloc([m]);
    layerNormForward(engine, reshape(summed, [m, h]), this.embeddings.gamma, this.embeddings.beta, x, scratchMean, scratchRstd, config.layerNormEps);
    engine.release(summed, scratchMean, scratchRstd);
    x = this.dropout(x, mode, 0, t);

    const caches: SavedLayer[] | null = savesActivations(mode) ? [] : null;
    for (let i = 0; i < this.layers.length; i++) {
      const checkpointed = caches !== null && isCheckpointed(i, mode);
      const { output, activations } = this.layerForward(i, x, mask, b, t, mode, caches !== null && !checkpointed);
      if (!caches) engine.release(x);
      else caches.push({ input: saveTensor(engine, x, mode.storage ?? 'f32'), activations });
      x = output;
    }
    return { hidden: x, mask, batch: b, seq: t, mode, caches };
  }

  /** Backpropagate dHidden [B·T, H] into the trainable adapter's gradients (accumulated). */
  backward(result: ForwardResult, dHidden: Tensor): void {
    if (!result.caches) throw new Error('backward needs a forward run with train: true (and not noGrad)');
    if (!this.trainableAdapter) throw new Error('backward needs a trainable adapter');
    let dy = dHidden;
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const saved = result.caches[i];
      // A checkpointed layer runs its forward again, with the same dropout masks, for the activations
      // (its input read as f32 only for that forward); its backward then releases them as it goes.
      const recomputed = saved.activations
        ? null
        : withSaved(this.engine, [saved.input], ([x]) => this.layerForward(i, x, result.mask, result.batch, result.seq, result.mode, true));
      if (recomputed) this.engine.release(recomputed.output);
      const activations = saved.activations ?? recomputed!.activations!;
      saved.activations = null;
      // The upstream gradient is released once LayerNorm's backward has read it, unless it is the caller's.
      const dx = this.layerBackward(i, saved.input, activations, dy, dy !== dHidden, result, i > 0);
      dy = dx!;
    }
  }

  releaseForward(result: ForwardResult): void {
    const { engine } = this;
    engine.release(result.hidden, result.mask);
    for (const saved of result.caches ?? []) {
      releaseSaved(engine, saved.input);
      if (saved.activations) this.releaseActivations(saved.activations);
    }
    result.caches = null;
  }

  private releaseActivations(a: LayerActivations): void {
    releaseSaved(this.engine, a.q, a.k, a.v, a.probs, a.context, a.h1, a.y1, a.u, a.g, a.h2, ...a.xa.values());
    this.engine.release(a.mean1, a.rstd1, a.mean2, a.rstd2);
  }

  destroy(): void {
    const { engine } = this;
    const e = this.embeddings;
    releaseStored(engine, e.word, e.position, e.tokenType, e.gamma, e.beta);
    for (const layer of this.layers) {
      for (const lin of Object.values(layer.linears)) releaseLinear(engine, lin);
      releaseStored(engine, layer.ln1.gamma, layer.ln1.beta, layer.ln2.gamma, layer.ln2.beta);
    }
    for (const a of this.adapters) a.release();
    this.layers.length = 0;
  }

  // ---------------------------------------------------------------- layers

  /**
   * One layer's forward (x stays the caller's). Each activation is let go as soon as the forward has
   * no more use for it: with `save`, kept for backward (packed, with f16 storage) if backward reads
   * it, else released.
   */
  private layerForward(i: number, x: Tensor, mask: Tensor, b: number, t: number, mode: ForwardMode, save: boolean): { output: Tensor; activations: LayerActivations | null } {
    const { engine, config } = this;
    const keep = (kept: Tensor): SavedTensor | null => {
      if (save) return saveTensor(engine, kept, mode.storage ?? 'f32');
      engine.release(kept);
      return null;
    };
    const layer = this.layers[i];
    // A linear's input is read by its backward only for the trainable adapter's dA.
    const keepInput = (suffix: LinearSuffix, input: Tensor) => (trainsLinear(layer.linears[suffix], this) ? keep(input) : (engine.release(input), null));
    const m = b * t;
    const h = config.hiddenSize;
    const xa = new Map<string, Tensor>();
    const site = (k: number) => (i + 1) * 16 + k;
    const firstRow = (mode.firstSequence ?? 0) * t;
    const lin = (suffix: LinearSuffix, input: Tensor, k: number) => linearForward(engine, layer.linears[suffix], input, this.step(mode, site(k), firstRow, save ? xa : null));

    const q = lin('attention.self.query', x, 0);
    const k = lin('attention.self.key', x, 1);
    const v = lin('attention.self.value', x, 2);
    const shape: AttentionShape = { batch: b, seq: t, heads: config.numAttentionHeads, headDim: h / config.numAttentionHeads };
    const context = engine.alloc([m, h]);
    const probs = engine.alloc([b, config.numAttentionHeads, t, t]);
    attentionForward(engine, q, k, v, mask, context, probs, shape);
    const [savedQ, savedK, savedV, savedProbs] = [q, k, v, probs].map(keep);

    const attnOut = this.dropout(lin('attention.output.dense', context, 3), mode, site(4), t);
    const savedContext = keepInput('attention.output.dense', context);
    const h1 = engine.alloc([m, h]);
    add(engine, attnOut, x, h1);
    engine.release(attnOut);
    const y1 = engine.alloc([m, h]);
    const mean1 = engine.alloc([m]);
    const rstd1 = engine.alloc([m]);
    layerNormForward(engine, h1, layer.ln1.gamma, layer.ln1.beta, y1, mean1, rstd1, config.layerNormEps);
    const savedH1 = keep(h1);

    const u = lin('intermediate.dense', y1, 5);
    const g = engine.alloc([m, config.intermediateSize]);
    geluForward(engine, u, g);
    const savedU = keep(u);
    const out = this.dropout(lin('output.dense', g, 6), mode, site(7), t);
    const savedG = keepInput('output.dense', g);
    const h2 = engine.alloc([m, h]);
    add(engine, out, y1, h2);
    engine.release(out);
    const savedY1 = keepInput('intermediate.dense', y1);
    const y2 = engine.alloc([m, h]);
    const mean2 = engine.alloc([m]);
    const rstd2 = engine.alloc([m]);
    layerNormForward(engine, h2, layer.ln2.gamma, layer.ln2.beta, y2, mean2, rstd2, config.layerNormEps);
    const savedH2 = keep(h2);
    if (!save) {
      engine.release(mean1, rstd1, mean2, rstd2);
      return { output: y2, activations: null };
    }
    const activations: LayerActivations = {
      q: savedQ,
      k: savedK,
      v: savedV,
      probs: savedProbs,
      context: savedContext,
      h1: savedH1,
      y1: savedY1,
      u: savedU,
      g: savedG,
      h2: savedH2,
      mean1,
      rstd1,
      mean2,
      rstd2,
      xa: new Map([...xa].map(([name, t]) => [name, saveTensor(engine, t, mode.storage ?? 'f32')])),
    };
    return { output: y2, activations };
  }

  /**
   * Returns dX of the layer input when `needInputGrad`, else null. Each kept activation is read as
   * f32 (through a temporary when packed; GELU's input straight from its halves) only for the op
   * that needs it and released right after, as is each gradient once consumed, and dy2 once read
   * when `releaseDy`; `a` is spent. The layer input is unpacked only for the LoRA backward of the
   * q/k/v linears the trainable adapter adapts, one at a time.
   */
  private layerBackward(i: number, input: SavedTensor, a: LayerActivations, dy2: Tensor, releaseDy: boolean, result: ForwardResult, needInputGrad: boolean): Tensor | null {
    const { engine, config } = this;
    const layer = this.layers[i];
    const { mode } = result;
    const m = result.batch * result.seq;
    const h = config.hiddenSize;
    const site = (k: number) => (i + 1) * 16 + k;
    const firstRow = (mode.firstSequence ?? 0) * result.seq;
    // A kept activation, handed over: the caller releases it once read.
    const take = (name: KeptActivation): SavedTensor | null => {
      const kept = a[name];
      a[name] = null;
      return kept;
    };
    const need = (name: KeptActivation): SavedTensor => {
      const kept = take(name);
      if (!kept) throw new Error(`layer ${i}: the backward needs the forward's ${name}, which was not kept`);
      return kept;
    };
    const consume = (kept: SavedTensor[], use: (tensors: Tensor[]) => void) => {
      withSaved(engine, kept, use);
      releaseSaved(engine, ...kept);
    };
    // `accumulate`: dIn already holds a residual gradient to add to; otherwise it is overwritten.
    // The input and the trainable adapter's X·Aᵀ are read as f32 only when the adapter adapts the linear.
    const back = (suffix: LinearSuffix, linearInput: SavedTensor | null, dOut: Tensor, dIn: Tensor | null, accumulate: boolean, k: number) => {
      const lin = layer.linears[suffix];
      if (!trainsLinear(lin, this)) {
        linearBackward(engine, lin, null, dOut, dIn, accumulate, this.step(mode, site(k), firstRow, null));
        return;
      }
      const xa = a.xa.get(lin.name);
      if (!linearInput || !xa) throw new Error(`${lin.name}: the backward needs the forward's input and LoRA activations, which were not kept`);
      withSaved(engine, [linearInput, xa], ([x, xaF32]) => linearBackward(engine, lin, x, dOut, dIn, accumulate, this.step(mode, site(k), firstRow, new Map([[lin.name, xaF32]]))));
    };

    const dh2 = engine.alloc([m, h]);
    consume([need('h2')], ([h2]) => layerNormBackward(engine, h2, layer.ln2.gamma, a.mean2, a.rstd2, dy2, dh2));
    if (releaseDy) engine.release(dy2);
    const dOut = this.dropoutGrad(dh2, mode, site(7), result.seq);
    const dg = engine.alloc([m, config.intermediateSize]);
    const g = take('g');
    back('output.dense', g, dOut, dg, false, 6);
    releaseSaved(engine, g);
    if (dOut !== dh2) engine.release(dOut);
    const du = engine.alloc([m, config.intermediateSize]);
    const u = need('u');
    if ('packed' in u) geluBackwardPacked(engine, u.packed, dg, du);
    else geluBackward(engine, u.tensor, dg, du);
    releaseSaved(engine, u);
    engine.release(dg);
    const dy1 = engine.alloc([m, h]);
    engine.copy(dh2, dy1); // residual branch; the intermediate dense accumulates on top
    const y1 = take('y1');
    back('intermediate.dense', y1, du, dy1, true, 5);
    releaseSaved(engine, y1);
    engine.release(du, dh2);

    const dh1 = engine.alloc([m, h]);
    consume([need('h1')], ([h1]) => layerNormBackward(engine, h1, layer.ln1.gamma, a.mean1, a.rstd1, dy1, dh1));
    engine.release(dy1);
    const dAttnOut = this.dropoutGrad(dh1, mode, site(4), result.seq);
    const dContext = engine.alloc([m, h]);
    const context = take('context');
    back('attention.output.dense', context, dAttnOut, dContext, false, 3);
    releaseSaved(engine, context);
    if (dAttnOut !== dh1) engine.release(dAttnOut);
    const dq = engine.alloc([m, h]);
    const dk = engine.alloc([m, h]);
    const dv = engine.alloc([m, h]);
    const shape: AttentionShape = { batch: result.batch, seq: result.seq, heads: config.numAttentionHeads, headDim: h / config.numAttentionHeads };
    consume([need('q'), need('k'), need('v'), need('probs')], ([q, k, v, probs]) => attentionBackward(engine, q, k, v, probs, dContext, dq, dk, dv, shape));
    engine.release(dContext);

    const dx = needInputGrad ? dh1 : null; // residual branch; q/k/v accumulate on top
    back('attention.self.query', input, dq, dx, true, 0);
    back('attention.self.key', input, dk, dx, true, 1);
    back('attention.self.value', input, dv, dx, true, 2);
    engine.release(dq, dk, dv);
    if (!needInputGrad) engine.release(dh1);
    this.releaseActivations(a);
    return dx;
  }

  // ---------------------------------------------------------------- linear + LoRA

  /** `firstRow`: the layer input's first row in the step's whole batch (LoRA dropout masks); `saved` receives the trainable adapter's X·Aᵀ (null: nothing kept). */
  private step(mode: ForwardMode, site: number, firstRow: number, saved: Map<string, Tensor> | null): AdaptedStep {
    return { adapters: this.adapters, train: mode.train, seed: siteSeed(mode.seed, site), firstRow, saved };
  }

  /** Hidden dropout on x [B·T, H] of sequences `seq` long (masks placed by mode.firstSequence). */
  private dropout(x: Tensor, mode: ForwardMode, site: number, seq: number): Tensor {
    if (mode.hiddenDropout <= 0) return x;
    const y = this.engine.alloc(x.shape);
    dropoutForward(this.engine, x, y, mode.hiddenDropout, siteSeed(mode.seed, site), hiddenMaskOffset(x, mode, seq));
    this.engine.release(x);
    return y;
  }

  private dropoutGrad(dy: Tensor, mode: ForwardMode, site: number, seq: number): Tensor {
    if (mode.hiddenDropout <= 0) return dy;
    const dx = this.engine.alloc(dy.shape);
    dropoutBackward(this.engine, dy, dx, mode.hiddenDropout, siteSeed(mode.seed, site), hiddenMaskOffset(dy, mode, seq));
    return dx;
  }
}

/** Index of x's [B·T, H] first element in the whole batch's tensor (see ForwardMode.firstSequence). */
function hiddenMaskOffset(x: Tensor, mode: ForwardMode, seq: number): number {
  return (mode.firstSequence ?? 0) * seq * x.shape[x.shape.length - 1];
}

/** The same buffer viewed with another shape of equal size. */
export function reshape(t: Tensor, shape: number[]): Tensor {
  return { buffer: t.buffer, shape, dtype: t.dtype };
}
