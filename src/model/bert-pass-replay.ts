/**
 * The buffers one training pass of the BERT encoder takes from the engine's pool, replayed on sizes
 * alone (pool-replay.ts) in bert.ts's order of allocations and releases: the training forward
 * (each layer's activations kept, packed or released as layerForward lets them go; checkpointed
 * layers keep only their input), the sentence pooling, then backward layer by layer (a checkpointed
 * layer's forward again, then its backward releasing each activation and gradient once read). What
 * the pool ends up holding is the pass's peak, cross-size reuse included. Hidden dropout is assumed
 * on (its copies are one [M, H] buffer more at a time); the loss between forward and backward, and
 * a cached step's embeddings, are memory.ts's.
 */
import { halfWords } from '../engine/ops/half.ts';
import type { BertConfig } from './config.ts';
import type { LinearSuffix } from './lora.ts';
import { PoolReplay, type ReplayBuffer } from './pool-replay.ts';

/** Precision of the activations kept for backward. */
type Storage = 'f32' | 'f16';

export interface PassShape {
  sequences: number;
  seq: number;
  /** Activation checkpointing of every n-th layer; 0 = off. */
  checkpointEvery: number;
  storage: Storage;
  /** Rank of the trainable adapter on each linear it adapts (the same in every layer). */
  ranks: ReadonlyMap<LinearSuffix, number>;
}

/** A kept activation: its f32 elements, and its buffer (packed with f16 storage). */
interface Kept {
  elements: number;
  buffer: ReplayBuffer;
}

/** What a saving layer forward keeps: its activations (null: released, a frozen linear's input), LayerNorm statistics, X·Aᵀ. */
interface Layer {
  q: Kept;
  k: Kept;
  v: Kept;
  probs: Kept;
  context: Kept | null;
  h1: Kept;
  y1: Kept | null;
  u: Kept;
  g: Kept | null;
  h2: Kept;
  stats: ReplayBuffer[];
  xa: Map<LinearSuffix, Kept>;
}

/** Bytes the pool holds after one training pass (forward, pooling, backward) of `shape`. */
export function replayEncoderPass(config: BertConfig, shape: PassShape): number {
  return remembered(config, shape, false);
}

/** As replayEncoderPass, after one forward of the same slice without saving (a cached step's first pass). */
export function replayCachedEncoderPass(config: BertConfig, shape: PassShape): number {
  return remembered(config, shape, true);
}

/** Replays by config and pass: a plan (and the search for the largest batch) asks for the same passes again and again. */
const replays = new WeakMap<BertConfig, Map<string, number>>();

function remembered(config: BertConfig, shape: PassShape, embedFirst: boolean): number {
  let byPass = replays.get(config);
  if (!byPass) replays.set(config, (byPass = new Map()));
  const key = JSON.stringify([shape.sequences, shape.seq, shape.checkpointEvery, shape.storage, [...shape.ranks], embedFirst]);
  let held = byPass.get(key);
  if (held === undefined) byPass.set(key, (held = encoderPass(new PoolReplay(), config, shape, embedFirst)));
  return held;
}

function encoderPass(pool: PoolReplay, config: BertConfig, shape: PassShape, embedFirst: boolean): number {
  const { sequences: b, seq: t, storage, ranks } = shape;
  const m = b * t;
  const h = config.hiddenSize;
  const inter = config.intermediateSize;
  const probsElements = b * config.numAttentionHeads * t * t;
  const layers = config.numHiddenLayers;
  const checkpointed = (layer: number) => shape.checkpointEvery > 0 && layer % shape.checkpointEvery === 0;

  // saved-tensor.ts: f32 kept as it is; f16 packed into a new buffer and the f32 one released.
  const keep = (elements: number, buffer: ReplayBuffer): Kept => {
    if (storage === 'f32') return { elements, buffer };
    const packed = pool.alloc(halfWords(elements), 'packed');
    pool.release(buffer);
    return { elements, buffer: packed };
  };
  // withSaved: an f32 temporary per packed tensor while `use` runs.
  const read = <T>(kept: Kept[], use: () => T): T => {
    const temporaries = storage === 'f16' ? kept.map((k) => pool.alloc(k.elements)) : [];
    const result = use();
    pool.release(...temporaries);
    return result;
  };
  const dropout = (x: ReplayBuffer): ReplayBuffer => {
    const y = pool.alloc(m * h);
    pool.release(x);
    return y;
  };


  // adapted-linear.ts linearForward: y, and the trainable adapter's X·Aᵀ (kept when saving).
  const linearForward = (suffix: LinearSuffix, out: number, save: boolean, xa: Map<LinearSuffix, Kept>): ReplayBuffer => {
    const y = pool.alloc(m * out);
    const r = ranks.get(suffix);
    if (r !== undefined) {
      const buffer = pool.alloc(m * r);
      if (save) xa.set(suffix, { elements: m * r, buffer });
      else pool.release(buffer);
    }
    return y;
  };

  // bert.ts layerForward: x stays the caller's.
  const layerForward = (save: boolean): { output: ReplayBuffer; layer: Layer | null } => {
    const xa = new Map<LinearSuffix, Kept>();
    const kept = (elements: number, buffer: ReplayBuffer): Kept | null => {
      if (save) return keep(elements, buffer);
      pool.release(buffer);
      return null;
    };
    const keptInput = (suffix: LinearSuffix, elements: number, buffer: ReplayBuffer) => (ranks.has(suffix) ? kept(elements, buffer) : (pool.release(buffer), null));
    const q = linearForward('attention.self.query', h, save, xa);
    const k = linearForward('attention.self.key', h, save, xa);
    const v = linearForward('attention.self.value', h, save, xa);
    const context = pool.alloc(m * h);
    const probs = pool.alloc(probsElements);
    const [kq, kk, kv, kProbs] = [[m * h, q], [m * h, k], [m * h, v], [probsElements, probs]].map(([n, buffer]) => kept(n, buffer));
    const attnOut = dropout(linearForward('attention.output.dense', h, save, xa));
    const kContext = keptInput('attention.output.dense', m * h, context);
    const h1 = pool.alloc(m * h);
    pool.release(attnOut);
    const y1 = pool.alloc(m * h);
    const stats = [pool.alloc(m), pool.alloc(m)];
    const kh1 = kept(m * h, h1);
    const u = linearForward('intermediate.dense', inter, save, xa);
    const g = pool.alloc(m * inter);
    const ku = kept(m * inter, u);
    const out = dropout(linearForward('output.dense', h, save, xa));
    const kg = keptInput('output.dense', m * inter, g);
    const h2 = pool.alloc(m * h);
    pool.release(out);
    const ky1 = keptInput('intermediate.dense', m * h, y1);
    const output = pool.alloc(m * h);
    stats.push(pool.alloc(m), pool.alloc(m));
    const kh2 = kept(m * h, h2);
    if (!save) {
      pool.release(...stats);
      return { output, layer: null };
    }
    for (const [suffix, x] of xa) xa.set(suffix, keep(x.elements, x.buffer));
    return { output, layer: { q: kq!, k: kk!, v: kv!, probs: kProbs!, context: kContext, h1: kh1!, y1: ky1, u: ku!, g: kg, h2: kh2!, stats, xa } };
  };

  // adapted-linear.ts linearBackward (bert.ts `back`): the input and X·Aᵀ read as f32 only when adapted, and LoRA's scratch.
  const linearBackward = (suffix: LinearSuffix, input: Kept | null, a: Layer) => {
    const r = ranks.get(suffix);
    if (r === undefined) return;
    read([input!, a.xa.get(suffix)!], () => pool.release(pool.alloc(m * r)));
  };

  // bert.ts layerBackward: returns dX, or null for the first layer.
  const layerBackward = (input: Kept, a: Layer, dy2: ReplayBuffer, releaseDy: boolean, needInputGrad: boolean): ReplayBuffer | null => {
    const consume = (kept: (Kept | null)[], use: () => void = () => {}) => {
      read(kept.filter((k): k is Kept => k !== null), use);
      pool.release(...kept.map((k) => k?.buffer ?? null));
    };
    const dh2 = pool.alloc(m * h);
    consume([a.h2]);
    if (releaseDy) pool.release(dy2);
    const dOut = pool.alloc(m * h);
    const dg = pool.alloc(m * inter);
    linearBackward('output.dense', a.g, a);
    pool.release(a.g?.buffer ?? null, dOut);
    const du = pool.alloc(m * inter);
    pool.release(a.u.buffer, dg); // GELU's backward reads u's halves as they are
    const dy1 = pool.alloc(m * h);
    linearBackward('intermediate.dense', a.y1, a);
    pool.release(a.y1?.buffer ?? null, du, dh2);
    const dh1 = pool.alloc(m * h);
    consume([a.h1]);
    pool.release(dy1);
    const dAttnOut = pool.alloc(m * h);
    const dContext = pool.alloc(m * h);
    linearBackward('attention.output.dense', a.context, a);
    pool.release(a.context?.buffer ?? null, dAttnOut);
    const grads = [pool.alloc(m * h), pool.alloc(m * h), pool.alloc(m * h)];
    consume([a.q, a.k, a.v, a.probs], () => pool.release(pool.alloc(probsElements)));
    pool.release(dContext);
    for (const suffix of ['attention.self.query', 'attention.self.key', 'attention.self.value'] as const) linearBackward(suffix, input, a);
    pool.release(...grads, ...a.stats, ...[...a.xa.values()].map((x) => x.buffer));
    if (needInputGrad) return dh1;
    pool.release(dh1);
    return null;
  };

  // bert.ts forward: uploads, embeddings, their LayerNorm and dropout.
  const forward = (save: boolean): { hidden: ReplayBuffer; inputs: Kept[]; saved: (Layer | null)[]; small: ReplayBuffer[] } => {
    const ids = pool.alloc(m);
    const types = pool.alloc(m);
    const mask = pool.alloc(m);
    const summed = pool.alloc(m * h);
    pool.release(ids, types);
    let x = pool.alloc(m * h);
    pool.release(summed, pool.alloc(m), pool.alloc(m));
    x = dropout(x);
    const inputs: Kept[] = [];
    const saved: (Layer | null)[] = [];
    for (let i = 0; i < layers; i++) {
      const { output, layer } = layerForward(save && !checkpointed(i));
      if (save) {
        inputs.push(keep(m * h, x));
        saved.push(layer);
      } else pool.release(x);
      x = output;
    }
    // sentence.ts: pooled, the pooling's token weights, normalised embeddings and norms.
    return { hidden: x, inputs, saved, small: [mask, pool.alloc(b * h), pool.alloc(b * t), pool.alloc(b * h), pool.alloc(b)] };
  };

  if (embedFirst) {
    const pass1 = forward(false);
    pool.release(pass1.hidden, ...pass1.small);
  }
  const { hidden, inputs, saved, small } = forward(true);
  // sentence.ts backward: dPooled, then dHidden from the pooling.
  const dPooled = pool.alloc(b * h);
  const dHidden = pool.alloc(m * h);
  pool.release(dPooled);
  let dy = dHidden;
  for (let i = layers - 1; i >= 0; i--) {
    let layer = saved[i];
    if (!layer) {
      const recomputed = read([inputs[i]], () => layerForward(true));
      pool.release(recomputed.output);
      layer = recomputed.layer!;
    }
    // The upstream gradient is released once read, except the pooling's dHidden (the caller's).
    dy = layerBackward(inputs[i], layer, dy, i < layers - 1, i > 0)!;
  }
  pool.release(dHidden, hidden, ...small, ...inputs.map((k) => k.buffer));
  return pool.held;
}
