// Contrastive and pair losses on L2-normalised embeddings, forward and backward.
//
// InfoNCE: S = scale·anchors·candidatesᵀ [B, C]; loss = mean_i CE(S[i, :], i), and with the symmetric
// option the mean with mean_j CE(S[:B, j], j). Forward: small_gemm (logits) → softmax_lines over rows
// (probs, per-row CE terms) and, when symmetric, over the columns of the B×B block (probsT, terms) →
// sum_terms. Backward: infonce_grad_logits (dS) → small_gemm twice (dAnchors = scale·dS·cand,
// dCandidates = scale·dSᵀ·anchors).
// Cosine pair loss: cosine_pair_terms → sum_terms; cosine_pair_backward.
// Every reduction is a fixed tree in one workgroup (reduce.wgsl, concatenated in front), so results
// are bit-reproducible.

// ---------------------------------------------------------------- small_gemm
// out(p, q) = scale · Σ_k lhs(p, k)·rhs(k, q); one output per thread of a 16×16 tile.

struct GemmParams {
  p_len: u32,
  q_len: u32,
  k_len: u32,
  lhs_k_major: u32, // 1: lhs(p, k) stored [k, p]
  rhs_q_major: u32, // 1: rhs(k, q) stored [q, k]
  scale: f32,
}

@group(0) @binding(0) var<uniform> gp: GemmParams;
@group(0) @binding(1) var<storage, read> gemm_lhs: array<f32>;
@group(0) @binding(2) var<storage, read> gemm_rhs: array<f32>;
@group(0) @binding(3) var<storage, read_write> gemm_out: array<f32>;

var<workgroup> gemm_lhs_tile: array<f32, 256>; // (k, p) at k * 16 + p
var<workgroup> gemm_rhs_tile: array<f32, 256>; // (k, q) at k * 16 + q

@compute @workgroup_size(16, 16)
fn small_gemm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let p0 = wid.y * 16u;
  let q0 = wid.x * 16u;
  let lhs_k_major = gp.lhs_k_major != 0u;
  let rhs_q_major = gp.rhs_q_major != 0u;
  var acc = 0.0;
  for (var k0 = 0u; k0 < gp.k_len; k0 += 16u) {
    // Thread (x, y) loads one element of each tile; x runs along the contiguous index.
    let lp = p0 + select(lid.y, lid.x, lhs_k_major);
    let lk = k0 + select(lid.x, lid.y, lhs_k_major);
    var lv = 0.0;
    if (lp < gp.p_len && lk < gp.k_len) { lv = gemm_lhs[select(lp * gp.k_len + lk, lk * gp.p_len + lp, lhs_k_major)]; }
    gemm_lhs_tile[(lk - k0) * 16u + lp - p0] = lv;
    let rq = q0 + select(lid.x, lid.y, rhs_q_major);
    let rk = k0 + select(lid.y, lid.x, rhs_q_major);
    var rv = 0.0;
    if (rq < gp.q_len && rk < gp.k_len) { rv = gemm_rhs[select(rk * gp.q_len + rq, rq * gp.k_len + rk, rhs_q_major)]; }
    gemm_rhs_tile[(rk - k0) * 16u + rq - q0] = rv;
    workgroupBarrier();
    for (var k = 0u; k < 16u; k++) { acc += gemm_lhs_tile[k * 16u + lid.y] * gemm_rhs_tile[k * 16u + lid.x]; }
    workgroupBarrier();
  }
  let p = p0 + lid.y;
  let q = q0 + lid.x;
  if (p < gp.p_len && q < gp.q_len) { gemm_out[p * gp.q_len + q] = gp.scale * acc; }
}

// ---------------------------------------------------------------- softmax_lines
// One workgroup per line l (a row or a column of the logits): out = softmax(line) and
// terms[terms_offset + l] = logsumexp(line) − line[l] (cross-entropy with target element l).

struct SoftmaxParams {
  lines: u32,
  length: u32,
  in_elem_stride: u32,
  in_line_stride: u32,
  out_elem_stride: u32,
  out_line_stride: u32,
  terms_offset: u32,
}

@group(0) @binding(0) var<uniform> sp: SoftmaxParams;
@group(0) @binding(1) var<storage, read> softmax_logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> softmax_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> softmax_terms: array<f32>;

@compute @workgroup_size(256)
fn softmax_lines(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let line = wid.x + wid.y * nwg.x;
  if (line >= sp.lines) { return; }
  let base = line * sp.in_line_stride;
  var line_max = bitcast<f32>(0xff7fffffu); // lowest finite f32
  for (var e = lane; e < sp.length; e += LANES) { line_max = max(line_max, softmax_logits[base + e * sp.in_elem_stride]); }
  line_max = workgroup_max(lane, line_max);
  var sum = 0.0;
  for (var e = lane; e < sp.length; e += LANES) { sum += exp(softmax_logits[base + e * sp.in_elem_stride] - line_max); }
  sum = workgroup_sum(lane, sum);
  let inv_sum = 1.0 / sum;
  for (var e = lane; e < sp.length; e += LANES) {
    let z = softmax_logits[base + e * sp.in_elem_stride];
    softmax_out[line * sp.out_line_stride + e * sp.out_elem_stride] = exp(z - line_max) * inv_sum;
  }
  if (lane == 0u) {
    softmax_terms[sp.terms_offset + line] = line_max + log(sum) - softmax_logits[base + line * sp.in_elem_stride];
  }
}

// ---------------------------------------------------------------- sum_terms
// loss[0] = weight · Σ terms[0..count): one workgroup, fixed order.

struct SumParams {
  count: u32,
  weight: f32,
}

@group(0) @binding(0) var<uniform> sum_p: SumParams;
@group(0) @binding(1) var<storage, read> sum_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> sum_out: array<f32>;

@compute @workgroup_size(256)
fn sum_terms(@builtin(local_invocation_index) lane: u32) {
  var partial = 0.0;
  for (var e = lane; e < sum_p.count; e += LANES) { partial += sum_in[e]; }
  let total = workgroup_sum(lane, partial);
  if (lane == 0u) { sum_out[0] = sum_p.weight * total; }
}

// ---------------------------------------------------------------- infonce_grad_logits
// dS[i, c] = row_coef·(probs[i, c] − δ(i, c)) + [c < B]·col_coef·(probsT[c, i] − δ(i, c)),
// with row_coef = lossScale·w/B (w = ½ when symmetric, else 1) and col_coef = lossScale·½/B or 0.

struct GradLogitsParams {
  b: u32,
  c: u32,
  row_coef: f32,
  col_coef: f32,
}

@group(0) @binding(0) var<uniform> glp: GradLogitsParams;
@group(0) @binding(1) var<storage, read> grad_probs: array<f32>;
@group(0) @binding(2) var<storage, read> grad_probs_t: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_logits: array<f32>;

@compute @workgroup_size(256)
fn infonce_grad_logits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let index = gid.x + gid.y * nwg.x * 256u;
  if (index >= glp.b * glp.c) { return; }
  let i = index / glp.c;
  let c = index % glp.c;
  let onehot = select(0.0, 1.0, i == c);
  var g = glp.row_coef * (grad_probs[index] - onehot);
  if (glp.col_coef != 0.0 && c < glp.b) { g += glp.col_coef * (grad_probs_t[c * glp.b + i] - onehot); }
  grad_logits[index] = g;
}

// ---------------------------------------------------------------- cosine pair loss
// loss = mean_i (a_i·b_i − label_i)²; one workgroup per row.

struct PairParams {
  rows: u32,
  h: u32,
  grad_coef: f32, // backward: lossScale·2/B
}

@group(0) @binding(0) var<uniform> pp: PairParams;
@group(0) @binding(1) var<storage, read> pair_a: array<f32>;
@group(0) @binding(2) var<storage, read> pair_b: array<f32>;
@group(0) @binding(3) var<storage, read> pair_labels: array<f32>;
@group(0) @binding(4) var<storage, read_write> pair_out_a: array<f32>; // terms [B] (forward) or da
@group(0) @binding(5) var<storage, read_write> pair_out_b: array<f32>; // db (backward)

fn pair_dot(row: u32, lane: u32) -> f32 {
  var partial = 0.0;
  for (var e = lane; e < pp.h; e += LANES) { partial += pair_a[row * pp.h + e] * pair_b[row * pp.h + e]; }
  return workgroup_sum(lane, partial);
}

@compute @workgroup_size(256)
fn cosine_pair_terms(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= pp.rows) { return; }
  let diff = pair_dot(row, lane) - pair_labels[row];
  if (lane == 0u) { pair_out_a[row] = diff * diff; }
}

@compute @workgroup_size(256)
fn cosine_pair_backward(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= pp.rows) { return; }
  let g = pp.grad_coef * (pair_dot(row, lane) - pair_labels[row]);
  for (var e = lane; e < pp.h; e += LANES) {
    let index = row * pp.h + e;
    pair_out_a[index] = g * pair_b[index];
    pair_out_b[index] = g * pair_a[index];
  }
}
