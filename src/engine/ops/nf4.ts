/**
 * NF4 4-bit weights in the bitsandbytes layout on the GPU (shaders/nf4.wgsl): quantise (optionally
 * double-quantising absmax), dequantise, and the two matmuls a frozen Linear needs, Y = X·Wᵀ and
 * dX = dY·W, which decode the weight tile by tile and never hold it in f32.
 */
import nf4Source from '../../../shaders/nf4.wgsl?raw';
import { type Engine, type KernelSpec, Params, ceilDiv, grid1d } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { type Tensor, numel, shapeString } from '../tensor.ts';
import { expectMatrix, expectShape } from './check.ts';
import { dispatchFolded, expectDistinct, kernelFamily } from './launch.ts';
import { type Product, chosenVariant, regtileSpec, regtileTile } from './matmul-variants.ts';
import { type Activation, MATMUL_SOURCE, epilogueConstants, tiledKernel, tiledLaunch, tiledTile } from './matmul.ts';
import { unrollLoops } from './unroll.ts';
import { ABSMAX_BLOCK, DYNAMIC_MAP, NF4_BLOCK, type Nf4Host, bytesToWords, dequantizeAbsmaxRef, wordsToBytes } from './nf4.ref.ts';

export interface Nf4Weight {
  readonly shape: readonly [number, number];
  readonly packed: Tensor /* u32 */;
  readonly absmax: Tensor /* f32 per 64-block, or, with doubleQuant, u32-packed u8 codes */;
  readonly doubleQuant: null | { absmaxScale: Tensor /* f32 per 256-block */; offset: number };
}

const kernel = kernelFamily('nf4', MATMUL_SOURCE + nf4Source);
const unrolledKernel = kernelFamily('nf4-unrolled', unrollLoops(MATMUL_SOURCE + nf4Source));
const QUANTIZE = kernel('nf4_quantize', ['read', 'read_write', 'read_write']);
const ABSMAX_MEAN = kernel('nf4_absmax_mean', ['read', 'read_write']);
const DOUBLE_QUANTIZE = kernel('nf4_double_quantize', ['read', 'read', 'read_write', 'read_write']);
// Decoding kernels bind like the f32 matmul (1 x, 2 packed weight, 3 out, 4 bias) plus 5 absmax,
// 6 absmax scale, 7 dynamic map; nf4_dequantize reads no x or bias.
const DECODE_STORAGE = ['read', 'read', 'read_write', 'read', 'read', 'read', 'read'] as const;
const DEQUANTIZE = kernel('nf4_dequantize', [...DECODE_STORAGE]);
// Which words an invocation reads and how it indexes them (forward or input gradient) stays a
// constant; the rest may come at run time.
const matmul = tiledKernel(kernel('nf4_matmul', [...DECODE_STORAGE]), unrolledKernel('nf4_matmul', [...DECODE_STORAGE]), [
  'HAS_BIAS',
  'ACCUMULATE',
  'ACTIVATION',
  'DOUBLE_QUANT',
  'NF4_ALIGNED',
]);
const QUANTIZE_WORKGROUP = 64;
const DEQUANTIZE_WORKGROUP = 64;

/** u32 words that hold n 4-bit codes. */
const packedWords = (n: number) => ceilDiv(n, 8);

/** The dynamic map as a GPU tensor, one per engine. */
const dynamicMaps = new WeakMap<Engine, Tensor>();
function dynamicMapTensor(engine: Engine): Tensor {
  let t = dynamicMaps.get(engine);
  if (!t) {
    t = engine.upload(DYNAMIC_MAP, [256]);
    dynamicMaps.set(engine, t);
  }
  return t;
}

function quantizeParams(n: number, blocks: number, words: number, rowStride: number, offset = 0): ArrayBuffer {
  return new Params().u32(n, blocks, words, rowStride).f32(offset).build();
}

/** Record a one-invocation-per-item kernel (workgroup_size 64) over `items`, folded over x and y. */
function dispatchItems(engine: Engine, spec: KernelSpec, items: number, params: (rowStride: number) => ArrayBuffer, buffers: GPUBuffer[]): void {
  const grid = grid1d(ceilDiv(items, QUANTIZE_WORKGROUP), engine.limits.maxComputeWorkgroupsPerDimension);
  engine.dispatch(spec, params(grid[0] * QUANTIZE_WORKGROUP), buffers, grid);
}

/**
 * Quantise a 2-D f32 weight [N, K] (PyTorch Linear: out × in) to NF4 on the GPU. With doubleQuant,
 * absmax is double-quantised like bitsandbytes' compress_statistics; its offset (the mean absmax) is
 * read back once, so this flushes the engine's batch and waits for the GPU.
 */
export async function nf4Quantize(engine: Engine, w: Tensor, options: { doubleQuant?: boolean } = {}): Promise<Nf4Weight> {
  const op = 'nf4Quantize';
  const [rows, cols] = expectMatrix(op, 'w', w);
  const n = rows * cols;
  const blocks = ceilDiv(n, NF4_BLOCK);
  const words = packedWords(n);
  // The weight's buffers are held for the model's life: exact sizes (Engine.alloc).
  const packed = engine.alloc([words], 'u32', false, 'NF4 packed weight', 'exact');
  const absmax = engine.alloc([blocks], 'f32', false, 'NF4 absmax', options.doubleQuant ? 'pooled' : 'exact');
  dispatchItems(engine, QUANTIZE, blocks, (stride) => quantizeParams(n, blocks, words, stride), [w.buffer, packed.buffer, absmax.buffer]);
  const shape: [number, number] = [rows, cols];
  if (!options.doubleQuant) return { shape, packed, absmax, doubleQuant: null };

  const mean = engine.alloc([1]);
  engine.dispatch(ABSMAX_MEAN, quantizeParams(blocks, 1, 1, 0), [absmax.buffer, mean.buffer], [1]);
  const offset = (await engine.readF32(mean))[0];
  engine.release(mean);
  const scaleBlocks = ceilDiv(blocks, ABSMAX_BLOCK);
  const codeWords = ceilDiv(blocks, 4);
  const codes = engine.alloc([codeWords], 'u32', false, 'NF4 absmax codes', 'exact');
  const absmaxScale = engine.alloc([scaleBlocks], 'f32', false, 'NF4 absmax scales', 'exact');
  dispatchItems(engine, DOUBLE_QUANTIZE, scaleBlocks, (stride) => quantizeParams(blocks, scaleBlocks, codeWords, stride, offset), [
    absmax.buffer,
    dynamicMapTensor(engine).buffer,
    codes.buffer,
    absmaxScale.buffer,
  ]);
  engine.release(absmax);
  return { shape, packed, absmax: codes, doubleQuant: { absmaxScale, offset } };
}

/** Throw unless q's tensors have the sizes its shape implies. */
function expectNf4(op: string, q: Nf4Weight): void {
  const [rows, cols] = q.shape;
  if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows > 0 && cols > 0)) {
    throw new ShapeError(`${op}: q.shape must be two positive integers, got ${shapeString(q.shape)}`);
  }
  const blocks = ceilDiv(rows * cols, NF4_BLOCK);
  expectShape(op, 'q.packed', q.packed, [packedWords(rows * cols)], 'u32');
  if (q.doubleQuant) {
    expectShape(op, 'q.absmax (double-quantised codes)', q.absmax, [ceilDiv(blocks, 4)], 'u32');
    expectShape(op, 'q.doubleQuant.absmaxScale', q.doubleQuant.absmaxScale, [ceilDiv(blocks, ABSMAX_BLOCK)]);
    if (!Number.isFinite(q.doubleQuant.offset)) throw new ShapeError(`${op}: q.doubleQuant.offset must be finite, got ${q.doubleQuant.offset}`);
  } else {
    expectShape(op, 'q.absmax', q.absmax, [blocks]);
  }
}

/** Buffers of a decoding kernel: x, packed weight, out, bias, absmax, absmax scale, dynamic map. */
function decodeBuffers(engine: Engine, q: Nf4Weight, x: GPUBuffer, out: Tensor, bias: GPUBuffer): GPUBuffer[] {
  const scale = q.doubleQuant?.absmaxScale ?? q.absmax; // unread without double quantisation
  return [x, q.packed.buffer, out.buffer, bias, q.absmax.buffer, scale.buffer, dynamicMapTensor(engine).buffer];
}

/** out = the dequantised weight (same shape as q). */
export function nf4Dequantize(engine: Engine, q: Nf4Weight, out: Tensor): void {
  const op = 'nf4Dequantize';
  expectNf4(op, q);
  expectShape(op, 'out', out, q.shape);
  const n = numel(q.shape);
  const spec: KernelSpec = { ...DEQUANTIZE, constants: { DOUBLE_QUANT: Number(q.doubleQuant !== null) } };
  // Only N (the element count) and the offset are read; the tile is unused.
  const { params } = tiledLaunch({ batch: 1, M: 1, N: n, K: 1, aBatchStride: 0, bBatchStride: 0 }, 1, tiledTile(n), q.doubleQuant?.offset ?? 0);
  const grid = grid1d(ceilDiv(packedWords(n), DEQUANTIZE_WORKGROUP), engine.limits.maxComputeWorkgroupsPerDimension);
  // x and bias are not read: the packed weight stands in for them.
  engine.dispatch(spec, params, decodeBuffers(engine, q, q.packed.buffer, out, q.packed.buffer), grid);
}

function nf4Product(
  op: 'nf4Matmul' | 'nf4MatmulInputGrad',
  engine: Engine,
  x: Tensor,
  q: Nf4Weight,
  out: Tensor,
  forward: boolean,
  options: { bias?: Tensor; activation?: Activation; accumulate?: boolean },
): void {
  expectNf4(op, q);
  const [rows, inner] = expectMatrix(op, forward ? 'x' : 'dy', x);
  const [wOut, wIn] = q.shape;
  const K = forward ? wIn : wOut;
  const N = forward ? wOut : wIn;
  if (inner !== K) {
    throw new ShapeError(`${op}: ${forward ? 'x' : 'dy'} has shape ${shapeString(x.shape)} but the weight is ${shapeString(q.shape)}: expected ${K} columns`);
  }
  expectShape(op, forward ? 'y' : 'dx', out, [rows, N]);
  if (options.bias) expectShape(op, 'bias', options.bias, [N]);
  expectDistinct(op, { [forward ? 'y' : 'dx']: out }, { x, packed: q.packed, absmax: q.absmax, ...(options.bias ? { bias: options.bias } : {}) });
  const shared = {
    TRANS_B: Number(forward),
    NF4_ALIGNED: Number(wIn % 8 === 0),
    DOUBLE_QUANT: Number(q.doubleQuant !== null),
    ...epilogueConstants(op, options),
  };
  const dims = { batch: 1, M: rows, N, K, aBatchStride: 0, bBatchStride: 0 };
  // Without a bias, x is bound in its place and never read.
  const buffers = decodeBuffers(engine, q, x.buffer, out, (options.bias ?? x).buffer);
  const product: Product = { op, batch: 1, M: rows, N, K, transA: false, transB: forward };
  const variant = chosenVariant(engine, product);
  if (variant.kind === 'regtile') {
    const spec = { ...regtileSpec(variant, true, DECODE_STORAGE), constants: shared };
    const { params, workgroups } = tiledLaunch(dims, 1, regtileTile(variant), q.doubleQuant?.offset ?? 0);
    dispatchFolded(engine, spec, params, buffers, workgroups);
    return;
  }
  const tile = tiledTile(N);
  // dX = dY·W reads 8 adjacent columns of W from one word.
  const { spec, options: optionBits } = matmul(engine, { MM_LANES: tile.lanes, COLS_CONTIGUOUS: Number(!forward), ...shared });
  const { params, workgroups } = tiledLaunch(dims, 1, tile, q.doubleQuant?.offset ?? 0, optionBits);
  dispatchFolded(engine, spec, params, buffers, workgroups);
}

/** y[M, N] (=|+=) act(x[M, K]·Wᵀ + bias) with W = the dequantised q [N, K]; accumulate adds act(...) to y. */
export function nf4Matmul(engine: Engine, x: Tensor, q: Nf4Weight, y: Tensor, options: { bias?: Tensor; activation?: Activation; accumulate?: boolean } = {}): void {
  nf4Product('nf4Matmul', engine, x, q, y, true, options);
}

/** dx[M, K] (=|+=) dy[M, N]·W with W = the dequantised q [N, K]. */
export function nf4MatmulInputGrad(engine: Engine, dy: Tensor, q: Nf4Weight, dx: Tensor, options: { accumulate?: boolean } = {}): void {
  nf4Product('nf4MatmulInputGrad', engine, dy, q, dx, false, { accumulate: options.accumulate });
}

export function releaseNf4(engine: Engine, q: Nf4Weight): void {
  engine.release(q.packed, q.absmax, q.doubleQuant?.absmaxScale);
}

/** Upload a weight quantised on the CPU (nf4QuantizeRef, or bitsandbytes arrays read from a checkpoint). */
export function uploadNf4(engine: Engine, shape: readonly [number, number], host: Nf4Host): Nf4Weight {
  const n = shape[0] * shape[1];
  if (host.numel !== n) throw new ShapeError(`uploadNf4: the quantised data holds ${host.numel} values, shape ${shapeString(shape)} needs ${n}`);
  if (host.packed.length !== ceilDiv(n, 2)) throw new ShapeError(`uploadNf4: packed has ${host.packed.length} bytes, expected ${ceilDiv(n, 2)}`);
  const packed = engine.upload(bytesToWords(host.packed, 0x77), [packedWords(n)], 'u32', 'NF4 packed weight', 'exact');
  const dq = host.doubleQuant;
  if (!dq) return { shape: [shape[0], shape[1]], packed, absmax: engine.upload(host.absmax, [host.absmax.length], 'f32', 'NF4 absmax', 'exact'), doubleQuant: null };
  const codes = bytesToWords(dq.codes);
  return {
    shape: [shape[0], shape[1]],
    packed,
    absmax: engine.upload(codes, [codes.length], 'u32', 'NF4 absmax codes', 'exact'),
    doubleQuant: { absmaxScale: engine.upload(dq.absmaxScale, [dq.absmaxScale.length], 'f32', 'NF4 absmax scales', 'exact'), offset: dq.offset },
  };
}

/** Read a quantised weight back in bitsandbytes' arrays (packed bytes, absmax, double-quantisation codes). */
export async function readNf4(engine: Engine, q: Nf4Weight): Promise<Nf4Host> {
  expectNf4('readNf4', q);
  const n = numel(q.shape);
  const blocks = ceilDiv(n, NF4_BLOCK);
  const packed = wordsToBytes((await engine.read(q.packed)) as Uint32Array, ceilDiv(n, 2));
  const dq = q.doubleQuant;
  if (!dq) return { numel: n, packed, absmax: await engine.readF32(q.absmax), doubleQuant: null };
  const doubleQuant = { codes: wordsToBytes((await engine.read(q.absmax)) as Uint32Array, blocks), absmaxScale: await engine.readF32(dq.absmaxScale), offset: dq.offset };
  return { numel: n, packed, absmax: dequantizeAbsmaxRef(doubleQuant), doubleQuant };
}
