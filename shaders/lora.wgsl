// LoRA (PEFT shapes): Y += scale·(drop(X)·Aᵀ)·Bᵀ with A [r, in], B [out, r]; backward dA, dB, dX.
// Needs random.wgsl in front (dropout_keep).
//
// The rank r is small, so every product of the forward and backward is one of two shapes:
//   lora_narrow  out(p, c)  = scale · Σ_k big(p, k) · small(k, c)      (r output columns, long k)
//                  xa = drop(x)·Aᵀ,  scratch = dY·B,  dB += scale·dYᵀ·xa,  dA += scale·scratchᵀ·drop(x)
//   lora_wide    out[m, n] += scale · keep(m, n) · Σ_c thin[m, c] · small(c, n)   (short c)
//                  Y += scale·xa·Bᵀ,  dX += scale/(1-p)·mask·(scratch·A)
// Each thread owns a 4×4 register block of outputs. lora_narrow stages tiles of the big operand in
// workgroup memory, so each element of x or dY is read (and dropout-hashed) once per workgroup, not
// once per r column; lora_wide's reduction is only r long and reads its two thin operands directly.
// A narrow product has few output tiles but a long k (up to M = batch·seq), so it may be split
// along k over the grid's z: each split writes raw partial sums and lora_narrow_finish adds them in
// split order (deterministic) and applies scale/accumulate.
// The dropout mask always indexes the big tensor's (narrow) or output's (wide) storage, plus index_offset.

// Output columns per lora_narrow workgroup: 4, 8, 16, 32 or 64 (the rank rounded up). Operand layouts
// and the accumulate/dropout switches are uniform flags rather than pipeline constants: one pipeline
// per rank tile instead of one per combination (pipeline compiles are slow on some drivers).
override RANK_TILE: u32 = 4u;

const NARROW_P: u32 = 64u; // narrow: rows p per workgroup (16 groups of 4)
const NARROW_K: u32 = 16u; // narrow: k per staged tile (splits are multiples of it)
const WIDE_M: u32 = 64u;   // wide: rows per workgroup
const WIDE_N: u32 = 64u;   // wide: columns per workgroup

// lora_narrow's staged tiles of out = lhs · rhs, stored k-major so a thread reads vec4s:
// lhs = big (k, p) at [k * 16 + p / 4][p % 4], rhs = small (k, c) at [k * RANK_TILE / 4 + c / 4][c % 4].
var<workgroup> lhs_tile: array<vec4<f32>, 256>;
var<workgroup> rhs_tile: array<vec4<f32>, 256>;

// A thread's 4×4 block of outputs: row i of the block is ri (named fields keep it in registers).
struct Block {
  r0: vec4<f32>,
  r1: vec4<f32>,
  r2: vec4<f32>,
  r3: vec4<f32>,
}

// acc(i, j) += Σ_k lhs(k, 4·lhs_group + i) · rhs(k, 4·rhs_group + j) over the staged tiles.
fn multiply_tiles(acc: Block, lhs_group: u32, rhs_group: u32, rhs_stride: u32) -> Block {
  var b = acc;
  for (var k = 0u; k < NARROW_K; k++) {
    let a = lhs_tile[k * 16u + lhs_group];
    let s = rhs_tile[k * rhs_stride + rhs_group];
    b.r0 += a.x * s;
    b.r1 += a.y * s;
    b.r2 += a.z * s;
    b.r3 += a.w * s;
  }
  return b;
}

// ---------------------------------------------------------------- lora_narrow

struct NarrowParams {
  p_len: u32,
  k_len: u32,
  rank: u32,
  k_split: u32,          // k per split (a multiple of NARROW_K); split = workgroup_id.z
  partial: u32,          // 1: write raw sums to out[split, p, c] for lora_narrow_finish
  big_k_major: u32,      // 1: big(p, k) stored [k, p] (dY or x read transposed)
  small_rank_major: u32, // 1: small(k, c) stored [r, k] (like A) rather than [k, r] (like B)
  out_rank_major: u32,   // 1: out(p, c) stored [r, p] (dA) rather than [p, r]
  accumulate: u32,       // 1: out += rather than out =
  dropout: u32,          // 1: mask big's elements
  seed: u32,
  keep_threshold: u32,
  keep_scale: f32,
  scale: f32,
  index_offset: u32,     // added to the mask index before hashing (see dropout.wgsl)
}

@group(0) @binding(0) var<uniform> np: NarrowParams;
@group(0) @binding(1) var<storage, read> narrow_big: array<f32>;
@group(0) @binding(2) var<storage, read> narrow_small: array<f32>;
@group(0) @binding(3) var<storage, read_write> narrow_out: array<f32>;

fn narrow_big_at(p: u32, k: u32) -> f32 {
  if (p >= np.p_len || k >= np.k_len) { return 0.0; }
  let index = select(p * np.k_len + k, k * np.p_len + p, np.big_k_major != 0u);
  let v = narrow_big[index];
  if (np.dropout != 0u) { return select(0.0, v * np.keep_scale, dropout_keep(np.seed, index + np.index_offset, np.keep_threshold)); }
  return v;
}

fn narrow_small_at(k: u32, c: u32) -> f32 {
  if (k >= np.k_len || c >= np.rank) { return 0.0; }
  return narrow_small[select(k * np.rank + c, c * np.k_len + k, np.small_rank_major != 0u)];
}

// Outputs (p, c0..c0+3) of one block row.
fn narrow_store(split: u32, p: u32, c0: u32, row: vec4<f32>) {
  if (p >= np.p_len) { return; }
  for (var j = 0u; j < 4u; j++) {
    let c = c0 + j;
    if (c < np.rank) {
      if (np.partial != 0u) {
        narrow_out[(split * np.p_len + p) * np.rank + c] = row[j];
      } else {
        let index = select(p * np.rank + c, c * np.p_len + p, np.out_rank_major != 0u);
        var v = np.scale * row[j];
        if (np.accumulate != 0u) { v += narrow_out[index]; }
        narrow_out[index] = v;
      }
    }
  }
}

// Workgroup: 16 row groups × RANK_TILE/4 column groups;
// grid (ceil(P/64), ceil(r/RANK_TILE), number of k splits).
@compute @workgroup_size(RANK_TILE * 4u)
fn lora_narrow(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let threads = RANK_TILE * 4u;
  let col_groups = RANK_TILE / 4u;
  let cg = t % col_groups;
  let pg = t / col_groups;
  let p0 = wid.x * NARROW_P;
  let c0 = wid.y * RANK_TILE;
  let k_begin = wid.z * np.k_split;
  let k_end = min(np.k_len, k_begin + np.k_split);
  let big_k_major = np.big_k_major != 0u;
  let small_rank_major = np.small_rank_major != 0u;
  var acc = Block(vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
  for (var k0 = k_begin; k0 < k_end; k0 += NARROW_K) {
    // Neighbouring threads load neighbouring addresses in either layout. Only the very last tile
    // runs past k_len (splits are whole tiles), which narrow_*_at zero-fill.
    for (var e = t; e < NARROW_K * NARROW_P; e += threads) {
      let p = select(e / NARROW_K, e % NARROW_P, big_k_major);
      let k = select(e % NARROW_K, e / NARROW_P, big_k_major);
      lhs_tile[k * 16u + p / 4u][p % 4u] = narrow_big_at(p0 + p, k0 + k);
    }
    for (var e = t; e < NARROW_K * RANK_TILE; e += threads) {
      let c = select(e % RANK_TILE, e / NARROW_K, small_rank_major);
      let k = select(e / RANK_TILE, e % NARROW_K, small_rank_major);
      rhs_tile[k * col_groups + c / 4u][c % 4u] = narrow_small_at(k0 + k, c0 + c);
    }
    workgroupBarrier();
    acc = multiply_tiles(acc, pg, cg, col_groups);
    workgroupBarrier();
  }
  let p = p0 + pg * 4u;
  let c = c0 + cg * 4u;
  narrow_store(wid.z, p, c, acc.r0);
  narrow_store(wid.z, p + 1u, c, acc.r1);
  narrow_store(wid.z, p + 2u, c, acc.r2);
  narrow_store(wid.z, p + 3u, c, acc.r3);
}

struct FinishParams {
  p_len: u32,
  rank: u32,
  splits: u32,
  out_rank_major: u32,
  accumulate: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> fp: FinishParams;
@group(0) @binding(1) var<storage, read> finish_partial: array<f32>; // [splits, p, r]
@group(0) @binding(2) var<storage, read_write> finish_out: array<f32>;

// out(p, c) (+)= scale · Σ_split partial[split, p, c], splits added in order; one thread per output.
@compute @workgroup_size(256)
fn lora_narrow_finish(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let count = fp.p_len * fp.rank;
  if (i >= count) { return; }
  var sum = 0.0;
  for (var split = 0u; split < fp.splits; split++) { sum += finish_partial[split * count + i]; }
  let p = i / fp.rank;
  let c = i % fp.rank;
  let index = select(i, c * fp.p_len + p, fp.out_rank_major != 0u);
  var v = fp.scale * sum;
  if (fp.accumulate != 0u) { v += finish_out[index]; }
  finish_out[index] = v;
}

// ---------------------------------------------------------------- lora_wide

struct WideParams {
  m: u32,
  n: u32,
  rank: u32,
  small_rank_major: u32, // 1: small(c, n) stored [r, n] (A) rather than [n, r] (B)
  dropout: u32,          // 1: mask the output's elements
  seed: u32,
  keep_threshold: u32,
  scale: f32, // includes 1/(1-p) when dropout
  index_offset: u32,
}

@group(0) @binding(0) var<uniform> wp: WideParams;
@group(0) @binding(1) var<storage, read> wide_thin: array<f32>;   // [m, rank]
@group(0) @binding(2) var<storage, read> wide_small: array<f32>;  // (c, n)
@group(0) @binding(3) var<storage, read_write> wide_out: array<f32>; // [m, n], accumulated

// Outputs (m, n0..n0+3) of one block row.
fn wide_store(m: u32, n0: u32, row: vec4<f32>) {
  if (m >= wp.m) { return; }
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + j;
    if (n < wp.n) {
      let index = m * wp.n + n;
      var v = wp.scale * row[j];
      if (wp.dropout != 0u) { v = select(0.0, v, dropout_keep(wp.seed, index + wp.index_offset, wp.keep_threshold)); }
      wide_out[index] += v;
    }
  }
}

fn wide_thin_at(m: u32, c: u32) -> f32 {
  if (m >= wp.m) { return 0.0; }
  return wide_thin[m * wp.rank + c];
}

fn wide_small_at(c: u32, n: u32) -> f32 {
  if (n >= wp.n) { return 0.0; }
  return wide_small[select(n * wp.rank + c, c * wp.n + n, wp.small_rank_major != 0u)];
}

// Workgroup: 16×16 threads, each a 4×4 block of a 64×64 output tile; grid (ceil(n/64), ceil(m/64)).
// No staging: the reduction is only r long and both operands are r wide (cache-resident), so each
// thread reads its 4 + 4 values per rank entry directly; barriers would cost more than they save.
@compute @workgroup_size(256)
fn lora_wide(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let m = wid.y * WIDE_M + (t / 16u) * 4u;
  let n = wid.x * WIDE_N + (t % 16u) * 4u;
  var acc = Block(vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
  for (var c = 0u; c < wp.rank; c++) {
    let a = vec4(wide_thin_at(m, c), wide_thin_at(m + 1u, c), wide_thin_at(m + 2u, c), wide_thin_at(m + 3u, c));
    let s = vec4(wide_small_at(c, n), wide_small_at(c, n + 1u), wide_small_at(c, n + 2u), wide_small_at(c, n + 3u));
    acc.r0 += a.x * s;
    acc.r1 += a.y * s;
    acc.r2 += a.z * s;
    acc.r3 += a.w * s;
  }
  wide_store(m, n, acc.r0);
  wide_store(m + 1u, n, acc.r1);
  wide_store(m + 2u, n, acc.r2);
  wide_store(m + 3u, n, acc.r3);
}
