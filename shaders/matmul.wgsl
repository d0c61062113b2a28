// Batched f32 matmul: out[b] (=|+=) act(alpha · op(A[b]) · op(B[b]) + bias), see src/engine/ops/matmul.ts.
//
// Tiled: a workgroup of 16×16 threads computes a 64×64 output tile; each thread keeps a 4×4 block of
// outputs in four vec4 registers (rows ty + 16i, columns tx + 16j, so neighbouring threads touch
// neighbouring addresses). K is walked in steps of 16: both operand tiles are staged in workgroup
// memory k-major, so the inner loop reads 4 values of A and 4 of B for 16 FMAs. Edge tiles load zeros
// and skip out-of-range stores, so any M, N, K works. Concatenated after activation.wgsl (gelu).
//
// The tile helpers here (mm_tile_origin, mm_load_a_tile, mm_multiply_tiles, mm_store_tile) are shared
// with the NF4 kernels in nf4.wgsl, which only replace how the B tile is filled.

const MM_TILE_M = 64u;
const MM_TILE_N = 64u;
const MM_TILE_K = 16u;
const MM_THREADS_X = 16u;
const MM_THREADS_Y = 16u;
const MM_THREADS = 256u;
// Row strides of the staged tiles, padded by one so the k-major scatter of a row-major operand does
// not hit one memory bank with every thread on GPUs.
const MM_A_STRIDE = 65u;
const MM_B_STRIDE = 65u;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override ACTIVATION: u32 = 0u; // 0 none, 1 gelu

struct MatmulParams {
  M: u32,
  N: u32,
  K: u32,
  batch: u32,
  tiles_n: u32,
  tiles_m: u32,
  a_batch_stride: u32,
  b_batch_stride: u32, // 0 when B is shared by every batch
  alpha: f32,
  absmax_offset: f32,   // NF4 kernels only: the double-quantisation offset
}

@group(0) @binding(0) var<uniform> mm: MatmulParams;
@group(0) @binding(1) var<storage, read> mm_a: array<f32>;
@group(0) @binding(2) var<storage, read> mm_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> mm_out: array<f32>;
@group(0) @binding(4) var<storage, read> mm_bias: array<f32>;

var<workgroup> mm_a_tile: array<f32, MM_TILE_K * MM_A_STRIDE>; // [k][m]
var<workgroup> mm_b_tile: array<f32, MM_TILE_K * MM_B_STRIDE>; // [k][n]

// Which output tile a workgroup owns. Tiles are numbered n-fastest, then m, then batch, and folded
// over the grid's x and y; `valid` is false for the padding workgroups of a folded grid.
struct MmTile {
  m0: u32,
  n0: u32,
  batch: u32,
  valid: bool,
}

fn mm_tile_origin(wid: vec3<u32>, nwg: vec3<u32>) -> MmTile {
  let linear = wid.x + wid.y * nwg.x;
  let rest = linear / mm.tiles_n;
  return MmTile((rest % mm.tiles_m) * MM_TILE_M, (linear % mm.tiles_n) * MM_TILE_N, rest / mm.tiles_m, rest < mm.tiles_m * mm.batch);
}

// Element e of a staged 64×16 operand tile as (row, k): k varies fastest when the operand is stored
// k-contiguous, so consecutive threads always read consecutive addresses.
fn mm_tile_element(e: u32, k_contiguous: bool) -> vec2<u32> {
  if (k_contiguous) {
    return vec2<u32>(e / MM_TILE_K, e % MM_TILE_K);
  }
  return vec2<u32>(e % MM_TILE_M, e / MM_TILE_M);
}

// Stage op(A)[m0.., k0..] as mm_a_tile[k][m].
fn mm_load_a_tile(a_base: u32, m0: u32, k0: u32, tid: u32) {
  for (var i = 0u; i < MM_TILE_M * MM_TILE_K / MM_THREADS; i++) {
    let mk = mm_tile_element(tid + i * MM_THREADS, !TRANS_A);
    let gm = m0 + mk.x;
    let gk = k0 + mk.y;
    var v = 0.0;
    if (gm < mm.M && gk < mm.K) {
      v = mm_a[a_base + select(gm * mm.K + gk, gk * mm.M + gm, TRANS_A)];
    }
    mm_a_tile[mk.y * MM_A_STRIDE + mk.x] = v;
  }
}

// Stage op(B)[k0.., n0..] as mm_b_tile[k][n].
fn mm_load_b_tile(b_base: u32, n0: u32, k0: u32, tid: u32) {
  for (var i = 0u; i < MM_TILE_N * MM_TILE_K / MM_THREADS; i++) {
    let nk = mm_tile_element(tid + i * MM_THREADS, TRANS_B);
    let gn = n0 + nk.x;
    let gk = k0 + nk.y;
    var v = 0.0;
    if (gn < mm.N && gk < mm.K) {
      v = mm_b[b_base + select(gk * mm.N + gn, gn * mm.K + gk, TRANS_B)];
    }
    mm_b_tile[nk.y * MM_B_STRIDE + nk.x] = v;
  }
}

// A thread's 4×4 outputs: row i of the block is r<i>, its columns are the vec4 lanes.
struct MmBlock {
  r0: vec4<f32>,
  r1: vec4<f32>,
  r2: vec4<f32>,
  r3: vec4<f32>,
}

// acc += staged A tile · staged B tile, for this thread's rows ty + 16i and columns tx + 16j.
fn mm_multiply_tiles(acc_in: MmBlock, tx: u32, ty: u32) -> MmBlock {
  var acc = acc_in;
  for (var k = 0u; k < MM_TILE_K; k++) {
    let ar = k * MM_A_STRIDE + ty;
    let br = k * MM_B_STRIDE + tx;
    let a = vec4<f32>(mm_a_tile[ar], mm_a_tile[ar + 16u], mm_a_tile[ar + 32u], mm_a_tile[ar + 48u]);
    let b = vec4<f32>(mm_b_tile[br], mm_b_tile[br + 16u], mm_b_tile[br + 32u], mm_b_tile[br + 48u]);
    acc.r0 += a.x * b;
    acc.r1 += a.y * b;
    acc.r2 += a.z * b;
    acc.r3 += a.w * b;
  }
  return acc;
}

// out (=|+=) act(alpha · v + bias) for one output row segment (columns n, n+16, n+32, n+48).
fn mm_store_row(out_base: u32, m: u32, n: u32, v: vec4<f32>) {
  if (m >= mm.M) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let gn = n + j * 16u;
    if (gn < mm.N) {
      var r = mm.alpha * v[j];
      if (HAS_BIAS) {
        r += mm_bias[gn];
      }
      if (ACTIVATION == 1u) {
        r = gelu(r);
      }
      let at = out_base + m * mm.N + gn;
      if (ACCUMULATE) {
        r += mm_out[at];
      }
      mm_out[at] = r;
    }
  }
}

fn mm_store_tile(out_base: u32, tile: MmTile, acc: MmBlock, tx: u32, ty: u32) {
  let m = tile.m0 + ty;
  let n = tile.n0 + tx;
  mm_store_row(out_base, m, n, acc.r0);
  mm_store_row(out_base, m + 16u, n, acc.r1);
  mm_store_row(out_base, m + 32u, n, acc.r2);
  mm_store_row(out_base, m + 48u, n, acc.r3);
}

@compute @workgroup_size(16, 16)
fn matmul_tiled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let tile = mm_tile_origin(wid, nwg);
  if (!tile.valid) {
    return;
  }
  let tid = lid.y * MM_THREADS_X + lid.x;
  let a_base = tile.batch * mm.a_batch_stride;
  let b_base = tile.batch * mm.b_batch_stride;
  var acc = MmBlock(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k0 = 0u; k0 < mm.K; k0 += MM_TILE_K) {
    mm_load_a_tile(a_base, tile.m0, k0, tid);
    mm_load_b_tile(b_base, tile.n0, k0, tid);
    workgroupBarrier();
    acc = mm_multiply_tiles(acc, lid.x, lid.y);
    workgroupBarrier();
  }
  mm_store_tile(tile.batch * mm.M * mm.N, tile, acc, lid.x, lid.y);
}

// The benchmark's baseline: one thread per output, straight from global memory, out = A·B.
// Workgroups cover 16×16 outputs, numbered like the tiles of matmul_tiled (tiles_n, tiles_m count them).
@compute @workgroup_size(16, 16)
fn matmul_naive(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let linear = wid.x + wid.y * nwg.x;
  let rest = linear / mm.tiles_n;
  let batch = rest / mm.tiles_m;
  let m = (rest % mm.tiles_m) * 16u + lid.y;
  let n = (linear % mm.tiles_n) * 16u + lid.x;
  if (batch >= mm.batch || m >= mm.M || n >= mm.N) {
    return;
  }
  let a_base = batch * mm.a_batch_stride + m * mm.K;
  let b_base = batch * mm.b_batch_stride;
  var s = 0.0;
  for (var k = 0u; k < mm.K; k++) {
    s += mm_a[a_base + k] * mm_b[b_base + k * mm.N + n];
  }
  mm_out[(batch * mm.M + m) * mm.N + n] = s;
}
