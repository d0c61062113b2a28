// LoRA (PEFT shapes): Y += scale·(drop(X)·Aᵀ)·Bᵀ with A [r, in], B [out, r]; backward dA, dB, dX.
// Needs random.wgsl in front (dropout_keep).
//
// The rank r is small, so every product of the forward and backward is one of two shapes:
//   lora_narrow  out(p, c)  = scale · Σ_k big(p, k) · small(k, c)      (r output columns, long k)
//                  xa = drop(x)·Aᵀ,  scratch = dY·B,  dB += scale·dYᵀ·xa,  dA += scale·scratchᵀ·drop(x)
//   lora_wide    out[m, n] += scale · keep(m, n) · Σ_c thin[m, c] · small(c, n)   (short c)
//                  Y += scale·xa·Bᵀ,  dX += scale/(1-p)·mask·(scratch·A)
// Both stage tiles of the big operands in workgroup memory and give each thread a 4×4 register
// block, so each element of x or dY is read from global memory once per workgroup, not once per r.
// The dropout mask always indexes the big tensor's (narrow) or output's (wide) storage.

// Output columns per lora_narrow workgroup: 4, 8, 16, 32 or 64 (the rank rounded up). Operand layouts
// and the accumulate/dropout switches are uniform flags rather than pipeline constants: one pipeline
// per rank tile instead of one per combination (pipeline compiles are slow on some drivers).
override RANK_TILE: u32 = 4u;

const NARROW_P: u32 = 64u; // narrow: rows p per workgroup (16 groups of 4)
const NARROW_K: u32 = 16u; // narrow: k per staged tile
const WIDE_M: u32 = 64u;   // wide: rows per workgroup
const WIDE_N: u32 = 64u;   // wide: columns per workgroup
const WIDE_C: u32 = 16u;   // wide: rank entries per staged tile

struct NarrowParams {
  p_len: u32,
  k_len: u32,
  rank: u32,
  big_k_major: u32,      // 1: big(p, k) stored [k, p] (dY or x read transposed)
  small_rank_major: u32, // 1: small(k, c) stored [r, k] (like A) rather than [k, r] (like B)
  out_rank_major: u32,   // 1: out(p, c) stored [r, p] (dA) rather than [p, r]
  accumulate: u32,       // 1: out += rather than out =
  dropout: u32,          // 1: mask big's elements
  seed: u32,
  keep_threshold: u32,
  keep_scale: f32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> np: NarrowParams;
@group(0) @binding(1) var<storage, read> narrow_big: array<f32>;
@group(0) @binding(2) var<storage, read> narrow_small: array<f32>;
@group(0) @binding(3) var<storage, read_write> narrow_out: array<f32>;

// Staged tiles of out = lhs · rhs, both stored reduction-index-major so a thread reads vec4s:
// lhs (narrow: big (k, p); wide: thin (c, m)) at [k * 16 + p / 4][p % 4],
// rhs (narrow: small (k, c) at [k * RANK_TILE / 4 + c / 4][c % 4]; wide: small (c, n) at [c * 16 + n / 4][n % 4]).
var<workgroup> lhs_tile: array<vec4<f32>, 256>;
var<workgroup> rhs_tile: array<vec4<f32>, 256>;

// acc[i][j] += Σ_k lhs(k, 4·lhs_group + i) · rhs(k, 4·rhs_group + j) over the staged tiles.
fn multiply_tiles(acc: ptr<function, array<vec4<f32>, 4>>, steps: u32, lhs_group: u32, rhs_group: u32, rhs_stride: u32) {
  for (var k = 0u; k < steps; k++) {
    let a = lhs_tile[k * 16u + lhs_group];
    let s = rhs_tile[k * rhs_stride + rhs_group];
    (*acc)[0] += a.x * s;
    (*acc)[1] += a.y * s;
    (*acc)[2] += a.z * s;
    (*acc)[3] += a.w * s;
  }
}

fn narrow_big_at(p: u32, k: u32) -> f32 {
  if (p >= np.p_len || k >= np.k_len) { return 0.0; }
  let index = select(p * np.k_len + k, k * np.p_len + p, np.big_k_major != 0u);
  let v = narrow_big[index];
  if (np.dropout != 0u) { return select(0.0, v * np.keep_scale, dropout_keep(np.seed, index, np.keep_threshold)); }
  return v;
}

fn narrow_small_at(k: u32, c: u32) -> f32 {
  if (k >= np.k_len || c >= np.rank) { return 0.0; }
  return narrow_small[select(k * np.rank + c, c * np.k_len + k, np.small_rank_major != 0u)];
}

// Workgroup: 16 row groups × RANK_TILE/4 column groups; grid (ceil(P/64), ceil(r/RANK_TILE)).
@compute @workgroup_size(RANK_TILE * 4u)
fn lora_narrow(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let threads = RANK_TILE * 4u;
  let col_groups = RANK_TILE / 4u;
  let cg = t % col_groups;
  let pg = t / col_groups;
  let p0 = wid.x * NARROW_P;
  let c0 = wid.y * RANK_TILE;
  let big_k_major = np.big_k_major != 0u;
  let small_rank_major = np.small_rank_major != 0u;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < np.k_len; k0 += NARROW_K) {
    // Neighbouring threads load neighbouring addresses in either layout.
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
    multiply_tiles(&acc, NARROW_K, pg, cg, col_groups);
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let p = p0 + pg * 4u + i;
    for (var j = 0u; j < 4u; j++) {
      let c = c0 + cg * 4u + j;
      if (p < np.p_len && c < np.rank) {
        let index = select(p * np.rank + c, c * np.p_len + p, np.out_rank_major != 0u);
        var v = np.scale * acc[i][j];
        if (np.accumulate != 0u) { v += narrow_out[index]; }
        narrow_out[index] = v;
      }
    }
  }
}

struct WideParams {
  m: u32,
  n: u32,
  rank: u32,
  small_rank_major: u32, // 1: small(c, n) stored [r, n] (A) rather than [n, r] (B)
  dropout: u32,          // 1: mask the output's elements
  seed: u32,
  keep_threshold: u32,
  scale: f32, // includes 1/(1-p) when DROPOUT
}

@group(0) @binding(0) var<uniform> wp: WideParams;
@group(0) @binding(1) var<storage, read> wide_thin: array<f32>;   // [m, rank]
@group(0) @binding(2) var<storage, read> wide_small: array<f32>;  // (c, n)
@group(0) @binding(3) var<storage, read_write> wide_out: array<f32>; // [m, n], accumulated

// Workgroup: 16×16 threads, each a 4×4 block of a 64×64 output tile; grid (ceil(n/64), ceil(m/64)).
@compute @workgroup_size(256)
fn lora_wide(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let ng = t % 16u;
  let mg = t / 16u;
  let m0 = wid.y * WIDE_M;
  let n0 = wid.x * WIDE_N;
  let small_rank_major = wp.small_rank_major != 0u;
  var acc: array<vec4<f32>, 4>;
  for (var c0 = 0u; c0 < wp.rank; c0 += WIDE_C) {
    for (var e = t; e < WIDE_C * WIDE_M; e += 256u) {
      let m = e / WIDE_C;
      let c = e % WIDE_C;
      var v = 0.0;
      if (m0 + m < wp.m && c0 + c < wp.rank) { v = wide_thin[(m0 + m) * wp.rank + c0 + c]; }
      lhs_tile[c * 16u + m / 4u][m % 4u] = v;
    }
    for (var e = t; e < WIDE_C * WIDE_N; e += 256u) {
      let n = select(e / WIDE_C, e % WIDE_N, small_rank_major);
      let c = select(e % WIDE_C, e / WIDE_N, small_rank_major);
      var v = 0.0;
      if (n0 + n < wp.n && c0 + c < wp.rank) {
        v = wide_small[select((n0 + n) * wp.rank + c0 + c, (c0 + c) * wp.n + n0 + n, small_rank_major)];
      }
      rhs_tile[c * 16u + n / 4u][n % 4u] = v;
    }
    workgroupBarrier();
    multiply_tiles(&acc, min(WIDE_C, wp.rank - c0), mg, ng, 16u);
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + mg * 4u + i;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + ng * 4u + j;
      if (m < wp.m && n < wp.n) {
        let index = m * wp.n + n;
        var v = wp.scale * acc[i][j];
        if (wp.dropout != 0u) { v = select(0.0, v, dropout_keep(wp.seed, index, wp.keep_threshold)); }
        wide_out[index] += v;
      }
    }
  }
}
