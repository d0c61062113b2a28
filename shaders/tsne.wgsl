// Exact t-SNE gradient (van der Maaten & Hinton 2008) and the optimiser step.
//
// With w_ij = 1 / (1 + |y_i - y_j|²), Z = Σ_{k≠l} w_kl and q_ij = w_ij / Z, the gradient of
// KL(P‖Q) is  dC/dy_i = 4 Σ_j (α p_ij − q_ij) w_ij (y_i − y_j)  (α: early exaggeration), split into
//   attraction  A_i = Σ_j p_ij w_ij (y_i − y_j)     over the sparse P (CSR rows, k-NN affinities)
//   repulsion   R_i = Σ_j w_ij² (y_i − y_j)         over all j, exactly (O(N²), tiled)
// so that  dC/dy_i = 4 (α A_i − R_i / Z).  Every sum runs in a fixed order: no atomics, so two runs
// are bit-identical.

override WG: u32 = 64;    // threads per workgroup = points per tile
override DIM: u32 = 2u;   // embedding dimension, 2 or 3

struct TsneParams {
  n: u32,
  exaggeration: f32,
  momentum: f32,
  learning_rate: f32,
  min_gain: f32,
}

@group(0) @binding(0) var<uniform> params: TsneParams;

// ---------------------------------------------------------------------------------------------
// tsne_forces_2d / tsne_forces_3d: A_i, R_i and the row sums z_i = Σ_{j≠i} w_ij. Each thread owns
// ROWS points (register blocking: every staged point serves ROWS pairs per load, 2.5× the
// throughput of one point per thread on SwiftShader), written out row by row because a DIM branch
// or a dynamically indexed array inside the O(N²) loop costs as much again.
@group(0) @binding(1) var<storage, read> f_y: array<f32>;          // [n, DIM]
@group(0) @binding(2) var<storage, read> f_row_ptr: array<u32>;    // [n + 1]
@group(0) @binding(3) var<storage, read> f_cols: array<u32>;       // [nnz]
@group(0) @binding(4) var<storage, read> f_p: array<f32>;          // [nnz]
@group(0) @binding(5) var<storage, read_write> f_attr: array<f32>; // [n, DIM]
@group(0) @binding(6) var<storage, read_write> f_rep: array<f32>;  // [n, DIM]
@group(0) @binding(7) var<storage, read_write> f_z: array<f32>;    // [n]

const ROWS: u32 = 8u;

var<workgroup> tile_x: array<f32, WG>;
var<workgroup> tile_y: array<f32, WG>;
var<workgroup> tile_z: array<f32, WG>;

// Point r of this thread: rows of a workgroup are ROWS consecutive runs of WG points.
fn row(group: u32, r: u32, lane: u32) -> u32 { return (group * ROWS + r) * WG + lane; }

fn load_point(i: u32) -> vec3<f32> {
  let b = i * DIM;
  if (DIM == 3u) { return vec3<f32>(f_y[b], f_y[b + 1u], f_y[b + 2u]); }
  return vec3<f32>(f_y[b], f_y[b + 1u], 0.0);
}

// Stage points start..start+WG-1 in workgroup memory (the last tile repeats point n-1; callers
// stop at n).
fn load_tile(start: u32, lane: u32) {
  let yj = load_point(min(start + lane, params.n - 1u));
  tile_x[lane] = yj.x;
  tile_y[lane] = yj.y;
  tile_z[lane] = yj.z;
}

// (w² (p − q), w) with w = 1 / (1 + |p − q|²).
fn pair_2d(p: vec2<f32>, q: vec2<f32>) -> vec3<f32> {
  let d = p - q;
  let w = 1.0 / (1.0 + d.x * d.x + d.y * d.y);
  let w2 = w * w;
  return vec3<f32>(w2 * d.x, w2 * d.y, w);
}

fn pair_3d(p: vec3<f32>, q: vec3<f32>) -> vec4<f32> {
  let d = p - q;
  let w = 1.0 / (1.0 + d.x * d.x + d.y * d.y + d.z * d.z);
  let w2 = w * w;
  return vec4<f32>(w2 * d.x, w2 * d.y, w2 * d.z, w);
}

// Attraction over row i of the sparse P, then all outputs. `zsum` included j = i (w_ii = 1 exactly).
fn finish_point(i: u32, rep: vec3<f32>, zsum: f32) {
  if (i >= params.n) { return; }
  let yi = load_point(i);
  var attr = vec3<f32>(0.0);
  for (var e = f_row_ptr[i]; e < f_row_ptr[i + 1u]; e++) {
    let d = yi - load_point(f_cols[e]);
    attr += (f_p[e] / (1.0 + dot(d, d))) * d;
  }
  let b = i * DIM;
  for (var c = 0u; c < DIM; c++) {
    f_attr[b + c] = attr[c];
    f_rep[b + c] = rep[c];
  }
  f_z[i] = zsum - 1.0;
}

@compute @workgroup_size(WG)
fn tsne_forces_2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n = params.n;
  let p0 = load_point(min(row(wid.x, 0u, lid.x), n - 1u)).xy;
  let p1 = load_point(min(row(wid.x, 1u, lid.x), n - 1u)).xy;
  let p2 = load_point(min(row(wid.x, 2u, lid.x), n - 1u)).xy;
  let p3 = load_point(min(row(wid.x, 3u, lid.x), n - 1u)).xy;
  let p4 = load_point(min(row(wid.x, 4u, lid.x), n - 1u)).xy;
  let p5 = load_point(min(row(wid.x, 5u, lid.x), n - 1u)).xy;
  let p6 = load_point(min(row(wid.x, 6u, lid.x), n - 1u)).xy;
  let p7 = load_point(min(row(wid.x, 7u, lid.x), n - 1u)).xy;
  var a0 = vec3<f32>(0.0);
  var a1 = vec3<f32>(0.0);
  var a2 = vec3<f32>(0.0);
  var a3 = vec3<f32>(0.0);
  var a4 = vec3<f32>(0.0);
  var a5 = vec3<f32>(0.0);
  var a6 = vec3<f32>(0.0);
  var a7 = vec3<f32>(0.0);
  for (var start = 0u; start < n; start += WG) {
    load_tile(start, lid.x);
    workgroupBarrier();
    let count = min(WG, n - start);
    for (var k = 0u; k < count; k++) {
      let q = vec2<f32>(tile_x[k], tile_y[k]);
      a0 += pair_2d(p0, q);
      a1 += pair_2d(p1, q);
      a2 += pair_2d(p2, q);
      a3 += pair_2d(p3, q);
      a4 += pair_2d(p4, q);
      a5 += pair_2d(p5, q);
      a6 += pair_2d(p6, q);
      a7 += pair_2d(p7, q);
    }
    workgroupBarrier();
  }
  finish_point(row(wid.x, 0u, lid.x), vec3<f32>(a0.xy, 0.0), a0.z);
  finish_point(row(wid.x, 1u, lid.x), vec3<f32>(a1.xy, 0.0), a1.z);
  finish_point(row(wid.x, 2u, lid.x), vec3<f32>(a2.xy, 0.0), a2.z);
  finish_point(row(wid.x, 3u, lid.x), vec3<f32>(a3.xy, 0.0), a3.z);
  finish_point(row(wid.x, 4u, lid.x), vec3<f32>(a4.xy, 0.0), a4.z);
  finish_point(row(wid.x, 5u, lid.x), vec3<f32>(a5.xy, 0.0), a5.z);
  finish_point(row(wid.x, 6u, lid.x), vec3<f32>(a6.xy, 0.0), a6.z);
  finish_point(row(wid.x, 7u, lid.x), vec3<f32>(a7.xy, 0.0), a7.z);
}

@compute @workgroup_size(WG)
fn tsne_forces_3d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n = params.n;
  let p0 = load_point(min(row(wid.x, 0u, lid.x), n - 1u));
  let p1 = load_point(min(row(wid.x, 1u, lid.x), n - 1u));
  let p2 = load_point(min(row(wid.x, 2u, lid.x), n - 1u));
  let p3 = load_point(min(row(wid.x, 3u, lid.x), n - 1u));
  let p4 = load_point(min(row(wid.x, 4u, lid.x), n - 1u));
  let p5 = load_point(min(row(wid.x, 5u, lid.x), n - 1u));
  let p6 = load_point(min(row(wid.x, 6u, lid.x), n - 1u));
  let p7 = load_point(min(row(wid.x, 7u, lid.x), n - 1u));
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0);
  var a5 = vec4<f32>(0.0);
  var a6 = vec4<f32>(0.0);
  var a7 = vec4<f32>(0.0);
  for (var start = 0u; start < n; start += WG) {
    load_tile(start, lid.x);
    workgroupBarrier();
    let count = min(WG, n - start);
    for (var k = 0u; k < count; k++) {
      let q = vec3<f32>(tile_x[k], tile_y[k], tile_z[k]);
      a0 += pair_3d(p0, q);
      a1 += pair_3d(p1, q);
      a2 += pair_3d(p2, q);
      a3 += pair_3d(p3, q);
      a4 += pair_3d(p4, q);
      a5 += pair_3d(p5, q);
      a6 += pair_3d(p6, q);
      a7 += pair_3d(p7, q);
    }
    workgroupBarrier();
  }
  finish_point(row(wid.x, 0u, lid.x), a0.xyz, a0.w);
  finish_point(row(wid.x, 1u, lid.x), a1.xyz, a1.w);
  finish_point(row(wid.x, 2u, lid.x), a2.xyz, a2.w);
  finish_point(row(wid.x, 3u, lid.x), a3.xyz, a3.w);
  finish_point(row(wid.x, 4u, lid.x), a4.xyz, a4.w);
  finish_point(row(wid.x, 5u, lid.x), a5.xyz, a5.w);
  finish_point(row(wid.x, 6u, lid.x), a6.xyz, a6.w);
  finish_point(row(wid.x, 7u, lid.x), a7.xyz, a7.w);
}

// ---------------------------------------------------------------------------------------------
// tsne_reduce: stats = [Z, mean(y) (DIM values)], one workgroup of RED threads. Each thread sums a
// fixed strided subset, then a fixed tree combines them.
const RED: u32 = 64u;

@group(0) @binding(1) var<storage, read> r_z: array<f32>;          // [n]
@group(0) @binding(2) var<storage, read> r_y: array<f32>;          // [n, DIM]
@group(0) @binding(3) var<storage, read_write> r_stats: array<f32>; // [4]

var<workgroup> red_sum: array<vec4<f32>, RED>;

@compute @workgroup_size(RED)
fn tsne_reduce(@builtin(local_invocation_id) lid: vec3<u32>) {
  let n = params.n;
  var acc = vec4<f32>(0.0);
  for (var i = lid.x; i < n; i += RED) {
    let b = i * DIM;
    var y3 = 0.0;
    if (DIM == 3u) { y3 = r_y[b + 2u]; }
    acc += vec4<f32>(r_z[i], r_y[b], r_y[b + 1u], y3);
  }
  red_sum[lid.x] = acc;
  workgroupBarrier();
  for (var half = RED / 2u; half > 0u; half /= 2u) {
    if (lid.x < half) { red_sum[lid.x] += red_sum[lid.x + half]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let total = red_sum[0];
    let inv_n = 1.0 / f32(max(n, 1u));
    r_stats[0] = total.x;
    r_stats[1] = total.y * inv_n;
    r_stats[2] = total.z * inv_n;
    r_stats[3] = total.w * inv_n;
  }
}

// ---------------------------------------------------------------------------------------------
// tsne_update: gradient, gains (Jacobs 1988, as in van der Maaten's tsne.m), momentum step; the
// embedding is recentred by its mean before the step (translation leaves the gradient unchanged).
// One thread per coordinate.
@group(0) @binding(1) var<storage, read_write> u_y: array<f32>;        // [n, DIM]
@group(0) @binding(2) var<storage, read> u_attr: array<f32>;           // [n, DIM]
@group(0) @binding(3) var<storage, read> u_rep: array<f32>;            // [n, DIM]
@group(0) @binding(4) var<storage, read> u_stats: array<f32>;          // [4]
@group(0) @binding(5) var<storage, read_write> u_velocity: array<f32>; // [n, DIM]
@group(0) @binding(6) var<storage, read_write> u_gains: array<f32>;    // [n, DIM]

@compute @workgroup_size(WG)
fn tsne_update(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= params.n * DIM) { return; }
  let z = u_stats[0];
  let inv_z = select(0.0, 1.0 / z, z > 0.0);
  let grad = 4.0 * (params.exaggeration * u_attr[c] - u_rep[c] * inv_z);
  let previous = u_velocity[c];
  var gain = u_gains[c];
  gain = select(gain + 0.2, gain * 0.8, (grad > 0.0) == (previous > 0.0));
  gain = max(gain, params.min_gain);
  let velocity = params.momentum * previous - params.learning_rate * gain * grad;
  u_gains[c] = gain;
  u_velocity[c] = velocity;
  u_y[c] = u_y[c] - u_stats[1u + c % DIM] + velocity;
}
