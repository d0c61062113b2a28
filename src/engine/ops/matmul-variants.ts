/**
 * Matmul variants for real GPUs (shaders/matmul-regtile.wgsl): 2-D register tiles, workgroups of
 * 64–256 invocations, vec4 loads and f16 operands. A variant is a small descriptor; its WGSL is the
 * shared kernel under a generated header of constants. Which variant a product runs is the
 * engine's `kernelChoices` (filled by the autotuner, src/engine/autotune.ts), looked up by the
 * product's shape class; without a choice the fixed kernels of matmul.wgsl / nf4.wgsl run.
 */
import activationSource from '../../../shaders/activation.wgsl?raw';
import regtileSource from '../../../shaders/matmul-regtile.wgsl?raw';
import matmulSource from '../../../shaders/matmul.wgsl?raw';
import nf4Source from '../../../shaders/nf4.wgsl?raw';
import type { Engine, KernelSpec, StorageAccess } from '../engine.ts';
import { unrollLoops } from './unroll.ts';

/** The register-tiled kernel's shape. */
export interface RegtileVariant {
  readonly kind: 'regtile';
  /** Invocations along the output's columns (x) and rows (y). */
  readonly lanesN: number;
  readonly lanesM: number;
  /** Outputs each invocation accumulates: rows × cols (cols a multiple of 4). */
  readonly rows: number;
  readonly cols: number;
  /** K staged per step (a multiple of 8). */
  readonly tileK: number;
  /** Read A and B four elements at a time along their contiguous dimension (needs it a multiple of 4). */
  readonly vec4: boolean;
  /** f16 operands and products, f32 accumulation (needs shader-f16). */
  readonly f16: boolean;
}

/** The fixed kernels of matmul.wgsl and nf4.wgsl (shaped for SwiftShader), or a register-tiled variant. */
export type MatmulVariant = { readonly kind: 'fixed' } | RegtileVariant;

export const FIXED: MatmulVariant = { kind: 'fixed' };

export function variantName(v: MatmulVariant): string {
  if (v.kind === 'fixed') return 'fixed';
  return `rt${v.lanesN}x${v.lanesM}-${v.rows}x${v.cols}-k${v.tileK}${v.vec4 ? '-vec4' : ''}${v.f16 ? '-f16' : ''}`;
}

/**
 * Every variant the autotuner considers: the fixed kernel; three tile shapes (64, 128 and 256
 * invocations) with vec4 loads, and the smallest with scalar loads for operands whose contiguous
 * dimension is no multiple of 4; each in f32 and f16.
 */
export const VARIANTS: readonly MatmulVariant[] = [
  FIXED,
  ...[
    { lanesN: 8, lanesM: 8, rows: 4, cols: 4, tileK: 16, vec4: false }, // 32 × 32 outputs
    { lanesN: 8, lanesM: 8, rows: 4, cols: 4, tileK: 16, vec4: true },
    { lanesN: 16, lanesM: 8, rows: 8, cols: 4, tileK: 16, vec4: true }, // 64 × 64
    { lanesN: 16, lanesM: 16, rows: 4, cols: 4, tileK: 16, vec4: true }, // 64 × 64
  ].flatMap((shape) => [false, true].map((f16): MatmulVariant => ({ kind: 'regtile', ...shape, f16 }))),
];

const BY_NAME = new Map(VARIANTS.map((v) => [variantName(v), v]));

export function variantByName(name: string): MatmulVariant | undefined {
  return BY_NAME.get(name);
}

/** Which product: the f32 matmul, or the NF4 forward (Y = X·Wᵀ) or input gradient (dX = dY·W). */
export type ProductOp = 'matmul' | 'nf4Matmul' | 'nf4MatmulInputGrad';

/** A product as its kernel sees it: out[batch, M, N] = op(A)·op(B), with B's rows of `bRowLength` for NF4. */
export interface Product {
  readonly op: ProductOp;
  readonly batch: number;
  readonly M: number;
  readonly N: number;
  readonly K: number;
  readonly transA: boolean;
  readonly transB: boolean;
}

/** The product's NF4 weight rows are whole u32 words (8 codes): W's in-features, K forward, N backward. */
export function nf4Aligned(p: Product): boolean {
  return (p.op === 'nf4Matmul' ? p.K : p.N) % 8 === 0;
}

/** A and (for the f32 matmul) B can be read as vec4: their contiguous dimensions are multiples of 4. */
export function vec4Aligned(p: Product): boolean {
  const a = p.transA ? p.M : p.K;
  const b = p.transB ? p.K : p.N;
  return a % 4 === 0 && (p.op !== 'matmul' || b % 4 === 0);
}

/** Power-of-two bucket of a dimension: products in one bucket share a tuned choice. */
const bucket = (d: number) => 2 ** Math.ceil(Math.log2(d));

/** The key under which a choice is tuned and cached: op, transposes, batched, size buckets and alignment. */
export function shapeClass(p: Product): string {
  const flags = [p.transA && 'tA', p.transB && 'tB', p.batch > 1 && 'batched', vec4Aligned(p) && 'a4', p.op !== 'matmul' && nf4Aligned(p) && 'a8'].filter(Boolean);
  return `${p.op} M${bucket(p.M)} N${bucket(p.N)} K${bucket(p.K)}${flags.length ? ` ${flags.join(' ')}` : ''}`;
}

const workgroupBytes = (v: RegtileVariant) => v.tileK * (v.lanesM * v.rows + v.lanesN * v.cols) * (v.f16 ? 2 : 4);

/** Whether a variant can run the product on this engine (features, limits, alignment). */
export function variantApplies(engine: Engine, v: MatmulVariant, p: Product): boolean {
  if (v.kind === 'fixed') return true;
  if (v.f16 && !engine.device.features.has('shader-f16')) return false;
  if (v.vec4 && !vec4Aligned(p)) return false;
  return v.lanesN * v.lanesM <= engine.limits.maxComputeInvocationsPerWorkgroup && workgroupBytes(v) <= engine.limits.maxComputeWorkgroupStorageSize;
}

/** The variant the engine's tuned choices give the product, if it applies; else the fixed kernel. */
export function chosenVariant(engine: Engine, p: Product): MatmulVariant {
  const name = engine.kernelChoices.get(shapeClass(p));
  const v = name === undefined ? undefined : variantByName(name);
  return v && variantApplies(engine, v, p) ? v : FIXED;
}

/** Constants, staged type and operand bindings of a variant (see the top of matmul-regtile.wgsl). */
function header(v: RegtileVariant, nf4: boolean): string {
  const constants = { RT_LANES_N: v.lanesN, RT_LANES_M: v.lanesM, RT_ROWS: v.rows, RT_COLS: v.cols, RT_TILE_K: v.tileK, RT_VEC: v.vec4 ? 4 : 1 };
  const element = v.vec4 ? 'vec4<f32>' : 'f32';
  const group = (name: string) => (v.vec4 ? `${name}[i >> 2u]` : `vec4<f32>(${name}[i], 0.0, 0.0, 0.0)`);
  return [
    ...(v.f16 ? ['enable f16;'] : []),
    ...Object.entries(constants).map(([name, value]) => `const ${name} = ${value}u;`),
    `alias RtT = ${v.f16 ? 'f16' : 'f32'};`,
    `@group(0) @binding(1) var<storage, read> rt_a: array<${element}>;`,
    `@group(0) @binding(2) var<storage, read> rt_b: array<${element}>;`,
    `fn rt_a_group(i: u32) -> vec4<f32> { return ${group('rt_a')}; }`,
    `fn rt_b_group(i: u32) -> vec4<f32> { return ${group('rt_b')}; }`,
    `fn rt_stage_b_operand(b_base: u32, n0: u32, k0: u32, lane: u32) { ${nf4 ? 'rt_stage_b_nf4(n0, k0, lane)' : 'rt_stage_b(b_base, n0, k0, lane)'}; }`,
    '',
  ].join('\n');
}

const sources = new Map<string, string>();

/** A variant's kernel (entry point matmul_regtile) for the f32 matmul (bound like matmul_tiled) or the NF4 one (like nf4_matmul). */
export function regtileSpec(v: RegtileVariant, nf4: boolean, storage: readonly StorageAccess[]): KernelSpec {
  const module = `matmul-${variantName(v)}${nf4 ? '-nf4' : ''}`;
  let source = sources.get(module);
  if (!source) {
    const counts = { RT_ROWS: v.rows, RT_COLS: v.cols, RT_QUADS: v.cols / 4, RT_VEC: v.vec4 ? 4 : 1 };
    source = header(v, nf4) + activationSource + matmulSource + nf4Source + unrollLoops(regtileSource, counts);
    sources.set(module, source);
  }
  return { module, source, entryPoint: 'matmul_regtile', storage };
}

/** Output rows and columns of a variant's workgroup. */
export function regtileTile(v: RegtileVariant): { rows: number; cols: number } {
  return { rows: v.lanesM * v.rows, cols: v.lanesN * v.cols };
}
