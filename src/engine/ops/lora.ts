/**
 * LoRA adapter (PEFT shapes: A [r, in], B [out, r]) forward and backward:
 *   forward   xa = drop(x)·Aᵀ,  y += scale·xa·Bᵀ
 *   backward  scratch = dY·B,  dB += scale·dYᵀ·xa,  dA += scale·scratchᵀ·drop(x),  dx += drop'(scale·scratch·A)
 * Two kernels specialised for small r (shaders/lora.wgsl) cover the six products.
 */
import randomSource from '../../../shaders/random.wgsl?raw';
import loraSource from '../../../shaders/lora.wgsl?raw';
import { type Engine, type KernelSpec, Params, ceilDiv, roundUp } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import type { Tensor } from '../tensor.ts';
import { expectMatrix, expectShape } from './check.ts';
import { type DropoutConstants, dropoutConstants } from './dropout.ts';
import { dispatchPerElement, expectDistinct } from './launch.ts';

/** Dropout on the LoRA input x only (PEFT's lora_dropout); the mask is dropoutForward's over x's elements. */
export interface LoraDropout {
  p: number;
  seed: number;
  /** Added to x's element indices before hashing (x is a slice of a larger batch); default 0. */
  indexOffset?: number;
}

const source = randomSource + loraSource;
const NARROW: KernelSpec = { module: 'lora', source, entryPoint: 'lora_narrow', storage: ['read', 'read', 'read_write'] };
const FINISH: KernelSpec = { module: 'lora', source, entryPoint: 'lora_narrow_finish', storage: ['read', 'read_write'] };
const WIDE: KernelSpec = { module: 'lora', source, entryPoint: 'lora_wide', storage: ['read', 'read', 'read_write'] };
const NARROW_ROWS = 64; // rows p per lora_narrow workgroup
const NARROW_K = 16; // k per staged tile; splits are multiples of it
const TARGET_WORKGROUPS = 512;
const MIN_SPLIT_K = 256;
const WIDE_TILE = 64; // rows and columns per lora_wide workgroup
const NO_DROPOUT: DropoutConstants = { seed: 0, keepThreshold: 0, keepScale: 1, indexOffset: 0 };

/** Output columns per lora_narrow workgroup: the rank rounded up to a power of two in [4, 64]. */
function rankTile(r: number): number {
  return Math.min(64, Math.max(4, 2 ** Math.ceil(Math.log2(r))));
}

interface NarrowLayout {
  /** big(p, k) is stored [k, p]. */
  bigKMajor: boolean;
  /** small(k, c) is stored [r, k]. */
  smallRankMajor: boolean;
  /** out(p, c) is stored [r, p]. */
  outRankMajor: boolean;
  accumulate: boolean;
}

/**
 * How many k-splits a narrow product uses: enough workgroups to occupy a large GPU (a reduction over
 * M = 4096 rows has only ceil(N/64) output tiles), but at least MIN_SPLIT_K rows per split.
 */
function narrowSplits(outputTiles: number, k: number): { splits: number; kSplit: number } {
  const wanted = Math.max(1, Math.min(ceilDiv(TARGET_WORKGROUPS, outputTiles), Math.floor(k / MIN_SPLIT_K)));
  const kSplit = roundUp(ceilDiv(k, wanted), NARROW_K);
  return { splits: ceilDiv(k, kSplit), kSplit };
}

/** out(p, c) (+)= scale · Σ_k big(p, k)·small(k, c), c < r; big masked by `dropout` when given. */
function narrow(
  engine: Engine,
  big: Tensor,
  small: Tensor,
  out: Tensor,
  dims: { p: number; k: number; r: number },
  layout: NarrowLayout,
  scale: number,
  dropout: DropoutConstants | null,
): void {
  const tile = rankTile(dims.r);
  const grid: [number, number] = [ceilDiv(dims.p, NARROW_ROWS), ceilDiv(dims.r, tile)];
  const { splits, kSplit } = narrowSplits(grid[0] * grid[1], dims.k);
  const partial = splits > 1 ? engine.alloc([splits, dims.p, dims.r]) : null;
  const d = dropout ?? NO_DROPOUT;
  const params = new Params()
    .u32(dims.p, dims.k, dims.r, kSplit, Number(partial !== null))
    .u32(...[layout.bigKMajor, layout.smallRankMajor, layout.outRankMajor, layout.accumulate, dropout !== null].map(Number))
    .u32(d.seed, d.keepThreshold)
    .f32(d.keepScale, scale)
    .u32(d.indexOffset)
    .build();
  const spec: KernelSpec = { ...NARROW, constants: { RANK_TILE: tile } };
  engine.dispatch(spec, params, [big.buffer, small.buffer, (partial ?? out).buffer], [grid[0], grid[1], splits]);
  if (!partial) return;
  const finish = new Params().u32(dims.p, dims.r, splits, Number(layout.outRankMajor), Number(layout.accumulate)).f32(scale).build();
  dispatchPerElement(engine, FINISH, finish, [partial.buffer, out.buffer], dims.p * dims.r);
  engine.release(partial);
}

/** out[m, n] += scale · keep(m, n) · Σ_c thin[m, c]·small(c, n); `dropout`'s keepScale is already in `scale`. */
function wide(
  engine: Engine,
  thin: Tensor,
  small: Tensor,
  out: Tensor,
  dims: { m: number; n: number; r: number },
  smallRankMajor: boolean,
  scale: number,
  dropout: DropoutConstants | null,
): void {
  const d = dropout ?? NO_DROPOUT;
  const params = new Params()
    .u32(dims.m, dims.n, dims.r, Number(smallRankMajor), Number(dropout !== null), d.seed, d.keepThreshold)
    .f32(scale)
    .u32(d.indexOffset)
    .build();
  engine.dispatch(WIDE, params, [thin.buffer, small.buffer, out.buffer], [ceilDiv(dims.n, WIDE_TILE), ceilDiv(dims.m, WIDE_TILE)]);
}

/** Validate x [M, in], a [r, in], b [out, r]; returns the dimensions. */
function adapterDims(op: string, x: Tensor, a: Tensor, b: Tensor): { m: number; inF: number; outF: number; r: number } {
  const [m, inF] = expectMatrix(op, 'x', x);
  const [r] = expectMatrix(op, 'a', a);
  expectShape(op, 'a', a, [r, inF]);
  const [outF] = expectMatrix(op, 'b', b);
  expectShape(op, 'b', b, [outF, r]);
  return { m, inF, outF, r };
}

function checkScale(op: string, scale: number): void {
  if (!Number.isFinite(scale)) throw new ShapeError(`${op}: scale must be a finite number, got ${scale}`);
}

function loraDropoutConstants(op: string, dropout: LoraDropout | null): DropoutConstants | null {
  if (!dropout) return null;
  const constants = dropoutConstants(op, dropout.p, dropout.seed, dropout.indexOffset);
  return dropout.p === 0 ? null : constants;
}

/**
 * y [M, out] += scale·(drop(x)·Aᵀ)·Bᵀ; xa [M, r] is overwritten with drop(x)·Aᵀ (saved for the backward).
 * `scale` is alpha/r (or alpha/√r for rsLoRA), chosen by the caller.
 */
export function loraForward(
  engine: Engine,
  x: Tensor,
  a: Tensor,
  b: Tensor,
  y: Tensor,
  xa: Tensor,
  scale: number,
  dropout: LoraDropout | null,
): void {
  const op = 'loraForward';
  const { m, inF, outF, r } = adapterDims(op, x, a, b);
  expectShape(op, 'y', y, [m, outF]);
  expectShape(op, 'xa', xa, [m, r]);
  expectDistinct(op, { y, xa }, { x, a, b });
  checkScale(op, scale);
  const drop = loraDropoutConstants(op, dropout);
  const overwrite = { bigKMajor: false, smallRankMajor: true, outRankMajor: false, accumulate: false };
  narrow(engine, x, a, xa, { p: m, k: inF, r }, overwrite, 1, drop);
  wide(engine, xa, b, y, { m, n: outF, r }, false, scale, null);
}

/**
 * Gradients of y += scale·(drop(x)·Aᵀ)·Bᵀ given dy [M, out] and the forward's xa. They ACCUMULATE:
 * da [r, in] +=, db [out, r] +=, and dx [M, in] += (through the dropout mask) when dx is given.
 * scratch [M, r] receives dy·B. Use the forward's dropout (same p and seed).
 */
export function loraBackward(
  engine: Engine,
  x: Tensor,
  a: Tensor,
  b: Tensor,
  xa: Tensor,
  dy: Tensor,
  da: Tensor,
  db: Tensor,
  dx: Tensor | null,
  scale: number,
  dropout: LoraDropout | null,
  scratch: Tensor,
): void {
  const op = 'loraBackward';
  const { m, inF, outF, r } = adapterDims(op, x, a, b);
  expectShape(op, 'xa', xa, [m, r]);
  expectShape(op, 'dy', dy, [m, outF]);
  expectShape(op, 'da', da, [r, inF]);
  expectShape(op, 'db', db, [outF, r]);
  if (dx) expectShape(op, 'dx', dx, [m, inF]);
  expectShape(op, 'scratch', scratch, [m, r]);
  expectDistinct(op, dx ? { da, db, dx, scratch } : { da, db, scratch }, { x, a, b, xa, dy });
  checkScale(op, scale);
  const drop = loraDropoutConstants(op, dropout);
  // scratch = dy·B
  narrow(engine, dy, b, scratch, { p: m, k: outF, r }, { bigKMajor: false, smallRankMajor: false, outRankMajor: false, accumulate: false }, 1, null);
  // db += scale·dyᵀ·xa
  narrow(engine, dy, xa, db, { p: outF, k: m, r }, { bigKMajor: true, smallRankMajor: false, outRankMajor: false, accumulate: true }, scale, null);
  // da += scale·scratchᵀ·drop(x)
  narrow(engine, x, scratch, da, { p: inF, k: m, r }, { bigKMajor: true, smallRankMajor: false, outRankMajor: true, accumulate: true }, scale, drop);
  // dx += mask/(1-p)·scale·scratch·A
  if (dx) wide(engine, scratch, a, dx, { m, n: inF, r }, true, scale * (drop?.keepScale ?? 1), drop);
}
