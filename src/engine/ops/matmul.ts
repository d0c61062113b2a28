/**
 * Batched f32 matmul with the transposes a transformer needs (forward X·Wᵀ, backward dY·W and
 * dYᵀ·X), optional bias, fused GELU and accumulation into the output (shaders/matmul.wgsl).
 */
import activationSource from '../../../shaders/activation.wgsl?raw';
import matmulSource from '../../../shaders/matmul.wgsl?raw';
import { type Engine, type KernelSpec, Params, ceilDiv } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { type Tensor, shapeString } from '../tensor.ts';
import { expectShape } from './check.ts';
import { dispatchFolded, expectDistinct, kernelFamily } from './launch.ts';
import { unrollLoops, wantsUnrolledLoops } from './unroll.ts';
import { type Product, chosenVariant, regtileSpec, regtileTile } from './matmul-variants.ts';

export type Activation = 'none' | 'gelu';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: Tensor;
  activation?: Activation;
  accumulate?: boolean;
  alpha?: number;
}

/** The tiled kernels' helpers; nf4.ts appends its kernels to this source. */
export const MATMUL_SOURCE = activationSource + matmulSource;
/** Output rows and columns per workgroup. */
export interface Tile {
  rows: number;
  cols: number;
}

const TILE_ROWS = 16; // MM_ROWS in matmul.wgsl
const COLS_PER_LANE = 8; // MM_COLS
const NAIVE_TILE: Tile = { rows: 16, cols: 16 };

/**
 * The tiled kernels' workgroup for a product with N columns: 32 invocations (16 × 256 outputs), or
 * 16 (16 × 128) when that leaves fewer columns idle (N = 384: 3 tiles of 128, not 2 of 256).
 */
export function tiledTile(N: number): Tile & { lanes: number } {
  const lanes = ceilDiv(N, 128) * 128 < ceilDiv(N, 256) * 256 ? 16 : 32;
  return { rows: TILE_ROWS, cols: lanes * COLS_PER_LANE, lanes };
}

/** Outputs an M × N product computes with its tiles, idle ones included. */
function computedOutputs(M: number, N: number): number {
  const tile = tiledTile(N);
  return ceilDiv(M, tile.rows) * tile.rows * ceilDiv(N, tile.cols) * tile.cols;
}

/** Bits of MatmulParams.options: the options a tiled kernel reads at run time (mm_option in matmul.wgsl). */
const OPTION_BITS: Readonly<Record<string, number>> = { TRANS_A: 1, TRANS_B: 2, OUT_TRANSPOSED: 4, HAS_BIAS: 8, ACCUMULATE: 16, ACTIVATION: 32, DOUBLE_QUANT: 64, NF4_ALIGNED: 128 };

/** A tiled kernel set up for one product: its spec (constants included) and MatmulParams.options. */
export interface TiledLaunchSpec {
  spec: KernelSpec;
  options: number;
}

/**
 * A tiled kernel in its two builds, each engine getting the one its compiler wants: SwiftShader's
 * expanded loops with every option a pipeline constant (a pipeline per combination, each compiled
 * in a CPU second or two), or the loops as written with the options named in `runtime` read from
 * the uniform block (OPTIONS_AT_RUNTIME): LLVM (lavapipe) compiles a tiled pipeline for 5–20 CPU
 * seconds, so a few pipelines (one per workgroup size) serve every product.
 */
export function tiledKernel(rolled: KernelSpec, unrolled: KernelSpec, runtime: readonly string[]): (engine: Engine, options: Record<string, number>) => TiledLaunchSpec {
  const unknown = runtime.filter((name) => !(name in OPTION_BITS));
  if (unknown.length > 0) throw new Error(`tiledKernel: ${unknown.join(', ')} cannot be read at run time (options with a bit: ${Object.keys(OPTION_BITS).join(', ')})`);
  return (engine, options) => {
    if (wantsUnrolledLoops(engine.adapter)) return { spec: { ...unrolled, constants: options }, options: 0 };
    const constants: Record<string, number> = { OPTIONS_AT_RUNTIME: 1 };
    let bits = 0;
    for (const [name, value] of Object.entries(options)) {
      if (runtime.includes(name)) bits |= value !== 0 ? OPTION_BITS[name] : 0;
      else constants[name] = value;
    }
    return { spec: { ...rolled, constants }, options: bits };
  };
}

const kernel = kernelFamily('matmul', MATMUL_SOURCE);
const unrolledKernel = kernelFamily('matmul-unrolled', unrollLoops(MATMUL_SOURCE));
const TILED_STORAGE = ['read', 'read', 'read_write', 'read'] as const;
const tiled = tiledKernel(kernel('matmul_tiled', [...TILED_STORAGE]), unrolledKernel('matmul_tiled', [...TILED_STORAGE]), [
  'TRANS_A',
  'TRANS_B',
  'OUT_TRANSPOSED',
  'HAS_BIAS',
  'ACCUMULATE',
  'ACTIVATION',
]);
const NAIVE = kernel('matmul_naive', ['read', 'read', 'read_write']);

const ACTIVATION_CODES: Record<Activation, number> = { none: 0, gelu: 1 };

/** Pipeline constants of the epilogue shared by the tiled f32 and NF4 kernels. */
export function epilogueConstants(op: string, options: { bias?: Tensor; activation?: Activation; accumulate?: boolean }): Record<string, number> {
  const activation = options.activation ?? 'none';
  if (!(activation in ACTIVATION_CODES)) {
    throw new ShapeError(`${op}: unknown activation '${String(activation)}' (expected 'none' or 'gelu')`);
  }
  return { HAS_BIAS: Number(options.bias !== undefined), ACCUMULATE: Number(options.accumulate ?? false), ACTIVATION: ACTIVATION_CODES[activation] };
}

/** The dimensions of one (batched) product, as the kernels' uniform block wants them. */
export interface MatmulDims {
  batch: number;
  M: number;
  N: number;
  K: number;
  aBatchStride: number;
  /** 0 when b is shared by every batch. */
  bBatchStride: number;
}

/** The uniform block of the tiled kernels (MatmulParams in matmul.wgsl) and its workgroup count. */
export function tiledLaunch(dims: MatmulDims, alpha: number, tile: Tile, absmaxOffset = 0, options = 0): { params: ArrayBuffer; workgroups: number } {
  const tilesN = ceilDiv(dims.N, tile.cols);
  const tilesM = ceilDiv(dims.M, tile.rows);
  const params = new Params()
    .u32(dims.M, dims.N, dims.K, dims.batch, tilesN, tilesM, dims.aBatchStride, dims.bBatchStride)
    .f32(alpha, absmaxOffset)
    .u32(options)
    .build();
  return { params, workgroups: tilesN * tilesM * dims.batch };
}

/** Validate a, b, out for out = op(a)·op(b): shapes, dtypes, batch dimensions. */
function productDims(op: string, a: Tensor, b: Tensor, out: Tensor, transA: boolean, transB: boolean): MatmulDims {
  for (const [name, t] of [['a', a], ['b', b], ['out', out]] as const) {
    if (t.dtype !== 'f32') throw new ShapeError(`${op}: ${name} must be f32, got ${t.dtype}`);
    if (t.shape.length < 2) throw new ShapeError(`${op}: ${name} must have at least 2 dimensions, got shape ${shapeString(t.shape)}`);
  }
  expectShape(op, 'a', a, a.shape);
  expectShape(op, 'b', b, b.shape);
  const batchShape = a.shape.slice(0, -2);
  const batch = batchShape.reduce((p, d) => p * d, 1);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const [Kb, N] = transB ? [bc, br] : [br, bc];
  if (K !== Kb) {
    throw new ShapeError(
      `${op}: inner dimensions differ: a ${shapeString(a.shape)}${transA ? ' (transposed)' : ''} has K = ${K}, ` +
        `b ${shapeString(b.shape)}${transB ? ' (transposed)' : ''} has K = ${Kb}`,
    );
  }
  const bShared = b.shape.length === 2;
  if (!bShared && shapeString(b.shape.slice(0, -2)) !== shapeString(batchShape)) {
    throw new ShapeError(`${op}: b has shape ${shapeString(b.shape)}: its batch dimensions must be a's ${shapeString(batchShape)}, or b must be 2-D`);
  }
  expectShape(op, 'out', out, [...batchShape, M, N]);
  for (const [name, d] of [['M', M], ['N', N], ['K', K], ['batch', batch]] as const) {
    if (d <= 0) throw new ShapeError(`${op}: ${name} is ${d}; empty products are not supported`);
  }
  return { batch, M, N, K, aBatchStride: M * K, bBatchStride: bShared ? 0 : K * N };
}

/**
 * out[..., M, N] (=|+=) alpha·op(a)[..., M, K] · op(b)[..., K, N] (+ bias[N]) then activation.
 * op = transpose if trans*. b may be unbatched (2-D) and is then shared by every batch.
 * With accumulate, out = out_old + act(alpha·op(a)·op(b) + bias): the activation applies to the new
 * product only, never to what out already held.
 */
export function matmul(engine: Engine, a: Tensor, b: Tensor, out: Tensor, options: MatmulOptions = {}): void {
  const op = 'matmul';
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const dims = productDims(op, a, b, out, transA, transB);
  const alpha = options.alpha ?? 1;
  if (!Number.isFinite(alpha)) throw new ShapeError(`${op}: alpha must be a finite number, got ${alpha}`);
  if (options.bias) expectShape(op, 'bias', options.bias, [dims.N]);
  expectDistinct(op, { out }, options.bias ? { a, b, bias: options.bias } : { a, b });
  const epilogue = epilogueConstants(op, options);
  // Without a bias the binding still needs a buffer; a is bound there and never read.
  const buffers = [a.buffer, b.buffer, out.buffer, (options.bias ?? a).buffer];
  const product: Product = { op, batch: dims.batch, M: dims.M, N: dims.N, K: dims.K, transA, transB };
  const variant = chosenVariant(engine, product);
  if (variant.kind === 'regtile') {
    const spec = { ...regtileSpec(variant, false, TILED_STORAGE), constants: { TRANS_A: Number(transA), TRANS_B: Number(transB), ...epilogue } };
    const { params, workgroups } = tiledLaunch(dims, alpha, regtileTile(variant));
    dispatchFolded(engine, spec, params, buffers, workgroups);
    return;
  }
  // A product with few columns and many rows runs as outᵀ = op(b)ᵀ·op(a)ᵀ: wide column tiles
  // would otherwise be mostly idle (LoRA's rank-r products, for one).
  const swap = computedOutputs(dims.N, dims.M) < computedOutputs(dims.M, dims.N);
  const kernelDims = swap ? { ...dims, M: dims.N, N: dims.M, aBatchStride: dims.bBatchStride, bBatchStride: dims.aBatchStride } : dims;
  const tile = tiledTile(kernelDims.N);
  const { spec, options: optionBits } = tiled(engine, {
    MM_LANES: tile.lanes,
    TRANS_A: Number(swap ? !transB : transA),
    TRANS_B: Number(swap ? !transA : transB),
    OUT_TRANSPOSED: Number(swap),
    ...epilogue,
  });
  const { params, workgroups } = tiledLaunch(kernelDims, alpha, tile, 0, optionBits);
  if (swap) [buffers[0], buffers[1]] = [buffers[1], buffers[0]];
  dispatchFolded(engine, spec, params, buffers, workgroups);
}

/** out[..., M, N] = a[..., M, K] · b[..., K, N] (or b [K, N] shared), one thread per output, no tiling: the benchmark's baseline. */
export function matmulNaive(engine: Engine, a: Tensor, b: Tensor, out: Tensor): void {
  const op = 'matmulNaive';
  const dims = productDims(op, a, b, out, false, false);
  expectDistinct(op, { out }, { a, b });
  const { params, workgroups } = tiledLaunch(dims, 1, NAIVE_TILE);
  dispatchFolded(engine, NAIVE, params, [a.buffer, b.buffer, out.buffer], workgroups);
}
