// Batched f32 matmul: out[b] (=|+=) act(alpha · op(A[b]) · op(B[b]) + bias), see src/engine/ops/matmul.ts.
//
// A workgroup of 32 (or 16) invocations computes a 16 × 256 (or 16 × 128) output tile; each
// invocation owns 8 columns and all 16 rows, so it keeps 16 × 8 accumulators. K is walked 16 at a time: the 16 × 16 tile of op(A)
// is staged in workgroup memory (every invocation reads all of it, the same address at the same
// time), while each invocation reads the values of op(B) for its own columns straight from memory
// (nothing to share: no other invocation needs them). Edge tiles stage zeros for rows past M, read
// clamped columns past N and skip their stores, and the last partial K tile runs a plain loop, so
// any M, N, K works.
//
// Loops marked `// @unroll` (constant trip count) are unrolled by the launcher (unrollLoops in
// matmul.ts): with constant indices the staged-tile reads and the accumulators compile to plain
// loads and registers on CPU Vulkan drivers; unexpanded, the source is the same kernel.
//
// Concatenated after activation.wgsl (gelu). nf4.wgsl reuses the helpers below (mm_tile_origin,
// mm_column, mm_stage_a, mm_fma_step, mm_store) and only replaces where op(B) comes from.

const MM_ROWS = 16u;   // output rows per workgroup
const MM_COLS = 8u;    // output columns per invocation
const MM_TILE_K = 16u;
// Invocations per workgroup (32 or 16; 16 when N is just past a multiple of 256, whose last
// 256-column tile would be mostly idle).
override MM_LANES: u32 = 32u;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override ACTIVATION: u32 = 0u; // 0 none, 1 gelu
// Column c of an invocation: lane + 32c (neighbours read neighbouring addresses of a row-major op(B))
// or, when true, lane·8 + c (8 adjacent columns, as NF4 words pack them).
override COLS_CONTIGUOUS: bool = false;
// The kernel computes outᵀ = op(B)ᵀ·op(A)ᵀ (the launcher swapped the operands, M and N) and stores
// it transposed: a product with few columns then fills the 256-column tiles with its rows instead.
override OUT_TRANSPOSED: bool = false;
// With OPTIONS_AT_RUNTIME the options the launcher names (tiledKernel in matmul.ts: the transposes
// and epilogue of matmul_tiled; the epilogue, DOUBLE_QUANT and NF4_ALIGNED of nf4_matmul) are read
// from mm.options (bits OPTION_BITS there) instead of being constants: a few pipelines then serve
// every product. The loops-as-written build takes it (LLVM compiles each tiled pipeline for 5–20 CPU
// seconds, see unroll.ts); SwiftShader's expanded build keeps the constants.
override OPTIONS_AT_RUNTIME: bool = false;

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
  options: u32,         // read only with OPTIONS_AT_RUNTIME
}

fn mm_option(constant: bool, bit: u32) -> bool {
  return select(constant, (mm.options & bit) != 0u, OPTIONS_AT_RUNTIME);
}
fn mm_trans_a() -> bool { return mm_option(TRANS_A, 1u); }
fn mm_trans_b() -> bool { return mm_option(TRANS_B, 2u); }
fn mm_out_transposed() -> bool { return mm_option(OUT_TRANSPOSED, 4u); }
fn mm_has_bias() -> bool { return mm_option(HAS_BIAS, 8u); }
fn mm_accumulate() -> bool { return mm_option(ACCUMULATE, 16u); }
fn mm_gelu() -> bool { return mm_option(ACTIVATION == 1u, 32u); }

@group(0) @binding(0) var<uniform> mm: MatmulParams;
@group(0) @binding(1) var<storage, read> mm_a: array<f32>;
@group(0) @binding(2) var<storage, read> mm_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> mm_out: array<f32>;
@group(0) @binding(4) var<storage, read> mm_bias: array<f32>;

var<workgroup> mm_a_tile: array<f32, 256>; // [k][row], MM_TILE_K × MM_ROWS

// A tile's 16 × 8 accumulators: element 2i + h holds row i, columns 4h .. 4h + 3.
alias MmAcc = array<vec4<f32>, 32>;

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
  return MmTile((rest % mm.tiles_m) * MM_ROWS, (linear % mm.tiles_n) * MM_LANES * MM_COLS, rest / mm.tiles_m, rest < mm.tiles_m * mm.batch);
}

fn mm_column(n0: u32, lane: u32, c: u32) -> u32 {
  return n0 + select(lane + c * MM_LANES, lane * MM_COLS + c, COLS_CONTIGUOUS);
}

// Stage op(A)[m0.., k0..] as mm_a_tile[k][row] (zeros outside A); consecutive invocations read
// consecutive addresses.
fn mm_stage_a(a_base: u32, m0: u32, k0: u32, lane: u32) {
  let trans_a = mm_trans_a();
  for (var j = 0u; j < MM_ROWS * MM_TILE_K / MM_LANES; j++) {
    let e = lane + j * MM_LANES;
    let row = select(e / MM_TILE_K, e % MM_ROWS, trans_a);
    let k = select(e % MM_TILE_K, e / MM_ROWS, trans_a);
    let gm = m0 + row;
    let gk = k0 + k;
    var v = 0.0;
    if (gm < mm.M && gk < mm.K) {
      v = mm_a[a_base + select(gm * mm.K + gk, gk * mm.M + gm, trans_a)];
    }
    mm_a_tile[k * MM_ROWS + row] = v;
  }
}

// acc += staged A column k (16 rows) ⊗ this invocation's 8 values of op(B) at k.
fn mm_fma_step(acc: ptr<function, MmAcc>, k: u32, b_lo: vec4<f32>, b_hi: vec4<f32>) {
  // @unroll
  for (var i = 0u; i < 16u; i++) {
    let a = mm_a_tile[k * MM_ROWS + i];
    (*acc)[2u * i] += a * b_lo;
    (*acc)[2u * i + 1u] += a * b_hi;
  }
}

// out[at] (=|+=) act(alpha · value + bias[bias_at]): the epilogue every tiled kernel stores with.
fn mm_write(at: u32, bias_at: u32, value: f32) {
  var r = mm.alpha * value;
  if (mm_has_bias()) {
    r += mm_bias[bias_at];
  }
  if (mm_gelu()) {
    r = gelu(r);
  }
  if (mm_accumulate()) {
    r += mm_out[at];
  }
  mm_out[at] = r;
}

// mm_write of the tile's rows < M and columns < N.
fn mm_store(out_base: u32, tile: MmTile, lane: u32, acc: ptr<function, MmAcc>) {
  let out_transposed = mm_out_transposed();
  // @unroll
  for (var c = 0u; c < 8u; c++) {
    let gn = mm_column(tile.n0, lane, c);
    if (gn < mm.N) {
      // @unroll
      for (var i = 0u; i < 16u; i++) {
        let gm = tile.m0 + i;
        if (gm < mm.M) {
          let at = out_base + select(gm * mm.N + gn, gn * mm.M + gm, out_transposed);
          mm_write(at, select(gn, gm, out_transposed), (*acc)[2u * i + c / 4u][c % 4u]);
        }
      }
    }
  }
}

// op(B)[k][column c] = mm_b[s[c] + k · k_stride], with offset = k · k_stride.
fn mm_b_values(s: array<u32, 8>, offset: u32) -> array<vec4<f32>, 2> {
  return array<vec4<f32>, 2>(
    vec4<f32>(mm_b[s[0] + offset], mm_b[s[1] + offset], mm_b[s[2] + offset], mm_b[s[3] + offset]),
    vec4<f32>(mm_b[s[4] + offset], mm_b[s[5] + offset], mm_b[s[6] + offset], mm_b[s[7] + offset]),
  );
}

@compute @workgroup_size(MM_LANES)
fn matmul_tiled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let tile = mm_tile_origin(wid, nwg);
  if (!tile.valid) {
    return;
  }
  let a_base = tile.batch * mm.a_batch_stride;
  let b_base = tile.batch * mm.b_batch_stride;
  // Where each column of op(B) starts, and the step between consecutive k. Columns past N are
  // clamped to the last one: their loads stay in bounds and their results are never stored.
  var starts: array<u32, 8>;
  // @unroll
  for (var c = 0u; c < 8u; c++) {
    let n = min(mm_column(tile.n0, lane, c), mm.N - 1u);
    starts[c] = b_base + select(n, n * mm.K, mm_trans_b());
  }
  let k_stride = select(mm.N, 1u, mm_trans_b());
  var acc: MmAcc;
  for (var k0 = 0u; k0 < mm.K; k0 += MM_TILE_K) {
    mm_stage_a(a_base, tile.m0, k0, lane);
    workgroupBarrier();
    if (k0 + MM_TILE_K <= mm.K) {
      // @unroll
      for (var k = 0u; k < 16u; k++) {
        let b = mm_b_values(starts, (k0 + k) * k_stride);
        mm_fma_step(&acc, k, b[0], b[1]);
      }
    } else {
      for (var k = 0u; k < mm.K - k0; k++) {
        let b = mm_b_values(starts, (k0 + k) * k_stride);
        mm_fma_step(&acc, k, b[0], b[1]);
      }
    }
    workgroupBarrier();
  }
  mm_store(tile.batch * mm.M * mm.N, tile, lane, &acc);
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
