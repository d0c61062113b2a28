/**
 * Causal-LM cross-entropy through the LM head without materialising [rows, vocab] logits: the
 * vocabulary is processed `chunk` rows of the head at a time (logits [rows, chunk] by the matmul, an
 * online log-sum-exp across chunks), forward and backward. The head [V, H] (untied lm_head.weight,
 * or the tied embedding matrix) is frozen: only d(hidden) is computed. See shaders/lm-head-loss.wgsl.
 *
 * The head may be a stored matrix (stored.ts): f32 or f16 row blocks that each fit one binding.
 * Each pass copies a chunk of the head to an f32 scratch (the matmul binds whole buffers; f16 rows
 * are unpacked), chunks never crossing a block, and recomputes its logits: the forward runs one
 * product over the vocabulary, the backward two. `lmHeadLogits` writes whole logits the same way.
 */
import source from '../../../shaders/lm-head-loss.wgsl?raw';
import { type Engine, Params } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { type StoredMatrix, storedView } from '../stored.ts';
import type { Tensor } from '../tensor.ts';
import { expectDims, expectMatrix, expectShape } from './check.ts';
import { halfWords, unpackHalf } from './half.ts';
import { dispatchFolded, dispatchPerElement, expectDistinct, kernelFamily } from './launch.ts';
import { matmul } from './matmul.ts';

const kernel = kernelFamily('lm-head-loss', source);
const CHUNK_FORWARD = kernel('lm_loss_chunk_forward', ['read', 'read', 'read_write']);
const FINISH = kernel('lm_loss_finish', ['read', 'read', 'read_write', 'read_write', 'read_write']);
const CHUNK_GRAD = kernel('lm_loss_chunk_grad', ['read', 'read', 'read_write']);

/** Rows per workgroup of lm_loss_chunk_forward. */
const ROW_WG = 64;

/** Hugging Face's ignore_index for labels that are not predicted (prompt tokens, padding). */
export const IGNORE_INDEX = -100;

/** Next-token targets on the GPU (i32 [rows]) with what the kernels need to know of them. */
export interface LmTargets {
  readonly ids: Tensor;
  readonly vocab: number;
  readonly ignoreIndex: number;
  /** Targets that are not ignoreIndex: the loss is their mean. */
  readonly count: number;
}

/** Upload the target of each hidden row (already shifted: row t's target is token t+1), checked against the vocabulary. */
export function uploadLmTargets(engine: Engine, targets: ArrayLike<number>, vocab: number, ignoreIndex = IGNORE_INDEX): LmTargets {
  const op = 'uploadLmTargets';
  expectDims(op, { vocab, rows: targets.length });
  if (!Number.isInteger(ignoreIndex) || ignoreIndex >= 0) throw new ShapeError(`${op}: ignoreIndex must be a negative integer (Hugging Face uses -100), got ${ignoreIndex}`);
  let count = 0;
  for (let row = 0; row < targets.length; row++) {
    const t = targets[row];
    if (t === ignoreIndex) continue;
    if (!Number.isInteger(t) || t < 0 || t >= vocab) {
      throw new ShapeError(`${op}: target ${t} of row ${row} is neither a token id in [0, ${vocab}) nor the ignore index ${ignoreIndex}`);
    }
    count++;
  }
  return { ids: engine.upload(Int32Array.from(targets), [targets.length], 'i32'), vocab, ignoreIndex, count };
}

export interface LmHeadLossOptions {
  /** Vocabulary rows per chunk: the scratch logits are [rows, chunk]. */
  chunk: number;
}

/** The head [vocab, width] (an f32 tensor, or a stored matrix with each block checked) as a stored matrix. */
function asHead(op: string, head: Tensor | StoredMatrix, vocab: number, width: number): StoredMatrix {
  if (!('blocks' in head)) {
    expectShape(op, 'head', head, [vocab, width]);
    return storedView('head', head);
  }
  if (head.rows !== vocab || head.cols !== width) throw new ShapeError(`${op}: head ${head.name} is [${head.rows}, ${head.cols}], expected [${vocab}, ${width}]`);
  for (const block of head.blocks) {
    const shape = head.precision === 'f32' ? [block.rows, width] : [halfWords(block.rows * width)];
    expectShape(op, `head rows from ${block.firstRow}`, block.data, shape, head.precision === 'f32' ? 'f32' : 'u32');
  }
  return head;
}

interface LossDims {
  rows: number;
  width: number;
  chunk: number;
  head: StoredMatrix;
}

function headDims(op: string, hidden: Tensor, head: Tensor | StoredMatrix, vocab: number, options: LmHeadLossOptions): LossDims {
  const [rows, width] = expectMatrix(op, 'hidden', hidden);
  const m = asHead(op, head, vocab, width);
  expectDims(op, { chunk: options.chunk });
  return { rows, width, chunk: Math.min(options.chunk, vocab), head: m };
}

function lossDims(op: string, hidden: Tensor, head: Tensor | StoredMatrix, targets: LmTargets, options: LmHeadLossOptions): LossDims {
  const dims = headDims(op, hidden, head, targets.vocab, options);
  expectShape(op, 'targets', targets.ids, [dims.rows], 'i32');
  return dims;
}

/** The head's blocks by name, for expectDistinct. */
function headBuffers(head: StoredMatrix): Record<string, Tensor> {
  return Object.fromEntries(head.blocks.map((b) => [`head rows from ${b.firstRow}`, b.data]));
}

function lossParams(rows: number, cols: number, colStart: number, targets: LmTargets): ArrayBuffer {
  const invCount = targets.count > 0 ? 1 / targets.count : 0;
  return new Params().u32(rows, cols, colStart, Number(colStart === 0)).i32(targets.ignoreIndex).f32(invCount).build();
}

/**
 * Call `step` with each chunk's logits [rows, cols] = hidden · head[start .. start+cols)ᵀ, the chunk
 * of the head (f32) and its start, in vocabulary order; a chunk ends at its block's end.
 */
function forEachChunk(engine: Engine, hidden: Tensor, dims: LossDims, step: (logits: Tensor, headChunk: Tensor, start: number) => void): void {
  const { rows, width, chunk, head } = dims;
  const logitsScratch = engine.alloc([rows, chunk]);
  const headScratch = engine.alloc([chunk, width]);
  for (const block of head.blocks) {
    for (let offset = 0; offset < block.rows; offset += chunk) {
      const cols = Math.min(chunk, block.rows - offset);
      const headChunk: Tensor = { ...headScratch, shape: [cols, width] };
      const logits: Tensor = { ...logitsScratch, shape: [rows, cols] };
      if (head.precision === 'f32') engine.copy(block.data, headChunk, { srcOffset: offset * width, count: cols * width });
      else unpackHalf(engine, block.data, headChunk, offset * width);
      matmul(engine, hidden, headChunk, logits, { transB: true });
      step(logits, headChunk, block.firstRow + offset);
    }
  }
  engine.release(logitsScratch, headScratch); // reuse of the buffers is ordered after these dispatches
}

/**
 * loss [1] = mean over counted targets of −log softmax(hidden·headᵀ)[target] (0 when none is
 * counted); tokenLoss [rows] = each row's −log p(target) (0 for ignored rows); lse [rows] = each
 * row's log-sum-exp, saved for the backward.
 */
export function lmHeadLossForward(
  engine: Engine,
  hidden: Tensor,
  head: Tensor | StoredMatrix,
  targets: LmTargets,
  out: { loss: Tensor; tokenLoss: Tensor; lse: Tensor },
  options: LmHeadLossOptions,
): void {
  const op = 'lmHeadLossForward';
  const dims = lossDims(op, hidden, head, targets, options);
  const { loss, tokenLoss, lse } = out;
  expectShape(op, 'loss', loss, [1]);
  expectShape(op, 'tokenLoss', tokenLoss, [dims.rows]);
  expectShape(op, 'lse', lse, [dims.rows]);
  expectDistinct(op, { loss, tokenLoss, lse }, { hidden, targets: targets.ids, ...headBuffers(dims.head) });
  const running = engine.alloc([3, dims.rows]);
  forEachChunk(engine, hidden, dims, (logits, _, start) => {
    const params = lossParams(dims.rows, logits.shape[1], start, targets);
    dispatchFolded(engine, CHUNK_FORWARD, params, [logits.buffer, targets.ids.buffer, running.buffer], Math.ceil(dims.rows / ROW_WG));
  });
  const params = lossParams(dims.rows, 0, 0, targets);
  engine.dispatch(FINISH, params, [running.buffer, targets.ids.buffer, lse.buffer, tokenLoss.buffer, loss.buffer], [1]);
  engine.release(running);
}

/** dHidden [rows, H] (overwritten) = d(mean loss)/d(hidden), from the forward's lse. */
export function lmHeadLossBackward(
  engine: Engine,
  hidden: Tensor,
  head: Tensor | StoredMatrix,
  targets: LmTargets,
  lse: Tensor,
  dHidden: Tensor,
  options: LmHeadLossOptions,
): void {
  const op = 'lmHeadLossBackward';
  const dims = lossDims(op, hidden, head, targets, options);
  expectShape(op, 'lse', lse, [dims.rows]);
  expectShape(op, 'dHidden', dHidden, [dims.rows, dims.width]);
  expectDistinct(op, { dHidden }, { hidden, targets: targets.ids, lse, ...headBuffers(dims.head) });
  forEachChunk(engine, hidden, dims, (logits, headChunk, start) => {
    const params = lossParams(dims.rows, logits.shape[1], start, targets);
    dispatchPerElement(engine, CHUNK_GRAD, params, [lse.buffer, targets.ids.buffer, logits.buffer], dims.rows * logits.shape[1]);
    matmul(engine, logits, headChunk, dHidden, { accumulate: start > 0 });
  });
}

/** out [rows, V] (overwritten) = hidden · headᵀ, the vocabulary `chunk` rows of the head at a time. */
export function lmHeadLogits(engine: Engine, hidden: Tensor, head: Tensor | StoredMatrix, out: Tensor, options: LmHeadLossOptions): void {
  const op = 'lmHeadLogits';
  const vocab = 'blocks' in head ? head.rows : head.shape[0];
  const dims = headDims(op, hidden, head, vocab, options);
  expectShape(op, 'out', out, [dims.rows, vocab]);
  expectDistinct(op, { out }, { hidden, ...headBuffers(dims.head) });
  forEachChunk(engine, hidden, dims, (logits, _, start) => {
    const cols = logits.shape[1];
    for (let r = 0; r < dims.rows; r++) engine.copy(logits, out, { srcOffset: r * cols, dstOffset: r * vocab + start, count: cols });
  });
}
