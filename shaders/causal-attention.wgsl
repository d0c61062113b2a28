// Grouped-query causal self-attention (Llama family), forward and backward, and the KV-cache append
// for generation.
//
// q, context and their gradients are [B, Tq, heads * D]; k, v and theirs are [B, Tk, kv_heads * D]
// (the projections as X·Wᵀ produces them, or the KV cache with Tk = its capacity). Query head h reads
// K/V head h / (heads / kv_heads), as Hugging Face's repeat_kv. Query row i sits at absolute position
// q_offset + i (0 in training, the cache length when decoding) and may attend key j when
// j ≤ q_offset + i and mask[b, j] = 1 (mask [B, Tk]: 1 for a real token, 0 for padding). A row with
// no such key (a left-padding query) gets context 0 and zero gradients. Masked keys are skipped,
// so they get probability exactly 0.
//
// Nothing of size T×T is stored: the forward keeps lse_i = log Σ_j exp(s_ij) per query row
// ([B, heads, Tq]) and the backward recomputes P_ij = exp(s_ij - lse_i) (as FlashAttention does).
// Forward:  s_ij = q_i·k_j * scale,  C_i = Σ_j P_ij v_j  (one pass, online softmax)
// Backward: δ_i = dC_i·C_i,  dS_ij = P_ij (dC_i·v_j - δ_i),
//           dQ_i = scale Σ_j dS_ij k_j,  dK_j = scale Σ_{h in group, i} dS_ij q_i,  dV_j = Σ_{h, i} P_ij dC_i
// Each invocation owns one (batch, head, row) and walks keys (or queries) in order: sums are
// sequential and deterministic. Head vectors live in private arrays of MAX_HEAD_DIM; no barriers.

const ATTN_WG = 64u;
const MAX_HEAD_DIM = 256u;

struct CausalParams {
  batch: u32, q_len: u32, kv_len: u32, heads: u32, kv_heads: u32, head_dim: u32, q_offset: u32, scale: f32,
}

@group(0) @binding(0) var<uniform> cp: CausalParams;

// One (batch, head, row) per invocation, folded over a 2-D grid; `heads` is the query heads for the
// forward and dQ kernels (row: query row) and the K/V heads for the dK/dV kernel (row: key row).
struct HeadRow { b: u32, h: u32, row: u32, index: u32, valid: bool }

fn head_row(gid: vec3<u32>, nwg: vec3<u32>, heads: u32, rows: u32) -> HeadRow {
  let index = gid.x + gid.y * nwg.x * ATTN_WG; // = (b * heads + h) * rows + row
  let bh = index / rows;
  return HeadRow(bh / heads, bh % heads, index % rows, index, index < cp.batch * heads * rows);
}

fn q_offset_of(b: u32, i: u32, h: u32) -> u32 {
  return ((b * cp.q_len + i) * cp.heads + h) * cp.head_dim;
}

fn kv_offset_of(b: u32, j: u32, g: u32) -> u32 {
  return ((b * cp.kv_len + j) * cp.kv_heads + g) * cp.head_dim;
}

fn group_of(h: u32) -> u32 {
  return h / (cp.heads / cp.kv_heads);
}

// exp(d) for d ≤ 0, exactly 0 below -104 where f32 underflows anyway (platform exp may not).
fn softmax_weight(d: f32) -> f32 {
  return select(0.0, exp(d), d > -104.0);
}

// causal_attention_forward: context and lse for one query row.
@group(0) @binding(1) var<storage, read> cf_q: array<f32>;
@group(0) @binding(2) var<storage, read> cf_k: array<f32>;
@group(0) @binding(3) var<storage, read> cf_v: array<f32>;
@group(0) @binding(4) var<storage, read> cf_mask: array<f32>;
@group(0) @binding(5) var<storage, read_write> cf_context: array<f32>;
@group(0) @binding(6) var<storage, read_write> cf_lse: array<f32>;

@compute @workgroup_size(ATTN_WG)
fn causal_attention_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = head_row(gid, nwg, cp.heads, cp.q_len);
  if (!at.valid) { return; }
  let qo = q_offset_of(at.b, at.row, at.h);
  let g = group_of(at.h);
  var q: array<f32, MAX_HEAD_DIM>;
  for (var d = 0u; d < cp.head_dim; d++) { q[d] = cf_q[qo + d]; }
  var acc: array<f32, MAX_HEAD_DIM>;
  var mx = 0.0;
  var total = 0.0; // 0 until the first allowed key
  let last = cp.q_offset + at.row;
  for (var j = 0u; j <= last; j++) {
    if (cf_mask[at.b * cp.kv_len + j] == 0.0) { continue; }
    let ko = kv_offset_of(at.b, j, g);
    var s = 0.0;
    for (var d = 0u; d < cp.head_dim; d++) { s += q[d] * cf_k[ko + d]; }
    s *= cp.scale;
    // Online softmax: when the max grows, rescale what was accumulated under the old max.
    var w = 1.0;
    if (total == 0.0 || s > mx) {
      let r = select(softmax_weight(mx - s), 0.0, total == 0.0);
      for (var d = 0u; d < cp.head_dim; d++) { acc[d] *= r; }
      total *= r;
      mx = s;
    } else {
      w = softmax_weight(s - mx);
    }
    total += w;
    for (var d = 0u; d < cp.head_dim; d++) { acc[d] += w * cf_v[ko + d]; }
  }
  let inv = select(0.0, 1.0 / total, total > 0.0);
  for (var d = 0u; d < cp.head_dim; d++) { cf_context[qo + d] = acc[d] * inv; }
  cf_lse[at.index] = select(0.0, mx + log(total), total > 0.0);
}

// causal_attention_backward_delta: stats [2, B * heads * Tq] = (lse_i, δ_i = dC_i·C_i) per query row,
// so each backward kernel binds one buffer for both (8 storage buffers at most, WebGPU's default).
@group(0) @binding(1) var<storage, read> cd_lse: array<f32>;
@group(0) @binding(2) var<storage, read> cd_context: array<f32>;
@group(0) @binding(3) var<storage, read> cd_dcontext: array<f32>;
@group(0) @binding(4) var<storage, read_write> cd_stats: array<f32>;

@compute @workgroup_size(ATTN_WG)
fn causal_attention_backward_delta(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = head_row(gid, nwg, cp.heads, cp.q_len);
  if (!at.valid) { return; }
  let qo = q_offset_of(at.b, at.row, at.h);
  var delta = 0.0;
  for (var d = 0u; d < cp.head_dim; d++) { delta += cd_dcontext[qo + d] * cd_context[qo + d]; }
  cd_stats[at.index] = cd_lse[at.index];
  cd_stats[cp.batch * cp.heads * cp.q_len + at.index] = delta;
}

// causal_attention_backward_query: dQ for one query row.
@group(0) @binding(1) var<storage, read> cq_q: array<f32>;
@group(0) @binding(2) var<storage, read> cq_k: array<f32>;
@group(0) @binding(3) var<storage, read> cq_v: array<f32>;
@group(0) @binding(4) var<storage, read> cq_mask: array<f32>;
@group(0) @binding(5) var<storage, read> cq_stats: array<f32>;
@group(0) @binding(6) var<storage, read> cq_dcontext: array<f32>;
@group(0) @binding(7) var<storage, read_write> cq_dq: array<f32>;

@compute @workgroup_size(ATTN_WG)
fn causal_attention_backward_query(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = head_row(gid, nwg, cp.heads, cp.q_len);
  if (!at.valid) { return; }
  let qo = q_offset_of(at.b, at.row, at.h);
  let g = group_of(at.h);
  var q: array<f32, MAX_HEAD_DIM>;
  var dc: array<f32, MAX_HEAD_DIM>;
  for (var d = 0u; d < cp.head_dim; d++) {
    q[d] = cq_q[qo + d];
    dc[d] = cq_dcontext[qo + d];
  }
  let lse = cq_stats[at.index];
  let delta = cq_stats[cp.batch * cp.heads * cp.q_len + at.index];
  var dq: array<f32, MAX_HEAD_DIM>;
  let last = cp.q_offset + at.row;
  for (var j = 0u; j <= last; j++) {
    if (cq_mask[at.b * cp.kv_len + j] == 0.0) { continue; }
    let ko = kv_offset_of(at.b, j, g);
    var s = 0.0;
    var dp = 0.0;
    for (var d = 0u; d < cp.head_dim; d++) {
      s += q[d] * cq_k[ko + d];
      dp += dc[d] * cq_v[ko + d];
    }
    let ds = softmax_weight(s * cp.scale - lse) * (dp - delta);
    for (var d = 0u; d < cp.head_dim; d++) { dq[d] += ds * cq_k[ko + d]; }
  }
  for (var d = 0u; d < cp.head_dim; d++) { cq_dq[qo + d] = dq[d] * cp.scale; }
}

// causal_attention_backward_key: dK and dV for one key row of one K/V head, over the query heads
// of its group and the query rows that see it, in order.
@group(0) @binding(1) var<storage, read> ck_q: array<f32>;
@group(0) @binding(2) var<storage, read> ck_k: array<f32>;
@group(0) @binding(3) var<storage, read> ck_v: array<f32>;
@group(0) @binding(4) var<storage, read> ck_mask: array<f32>;
@group(0) @binding(5) var<storage, read> ck_stats: array<f32>;
@group(0) @binding(6) var<storage, read> ck_dcontext: array<f32>;
@group(0) @binding(7) var<storage, read_write> ck_dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> ck_dv: array<f32>;

@compute @workgroup_size(ATTN_WG)
fn causal_attention_backward_key(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = head_row(gid, nwg, cp.kv_heads, cp.kv_len);
  if (!at.valid) { return; }
  let j = at.row;
  let ko = kv_offset_of(at.b, j, at.h);
  var k: array<f32, MAX_HEAD_DIM>;
  var v: array<f32, MAX_HEAD_DIM>;
  for (var d = 0u; d < cp.head_dim; d++) {
    k[d] = ck_k[ko + d];
    v[d] = ck_v[ko + d];
  }
  var dk: array<f32, MAX_HEAD_DIM>;
  var dv: array<f32, MAX_HEAD_DIM>;
  let group_size = cp.heads / cp.kv_heads;
  // A padded key is seen by no query; queries before position j do not see it either.
  let first = select(cp.q_len, max(j, cp.q_offset) - cp.q_offset, ck_mask[at.b * cp.kv_len + j] != 0.0);
  for (var r = 0u; r < group_size; r++) {
    let h = at.h * group_size + r;
    for (var i = first; i < cp.q_len; i++) {
      let qo = q_offset_of(at.b, i, h);
      let row = (at.b * cp.heads + h) * cp.q_len + i;
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < cp.head_dim; d++) {
        s += ck_q[qo + d] * k[d];
        dp += ck_dcontext[qo + d] * v[d];
      }
      let p = softmax_weight(s * cp.scale - ck_stats[row]);
      let ds = p * (dp - ck_stats[cp.batch * cp.heads * cp.q_len + row]);
      for (var d = 0u; d < cp.head_dim; d++) {
        dk[d] += ds * ck_q[qo + d];
        dv[d] += p * ck_dcontext[qo + d];
      }
    }
  }
  for (var d = 0u; d < cp.head_dim; d++) {
    ck_dk[ko + d] = dk[d] * cp.scale;
    ck_dv[ko + d] = dv[d];
  }
}

// kv_cache_append: copy new K and V rows [B, q_len, kv_heads * D] into the cache [B, kv_len, kv_heads * D]
// at rows q_offset.. of each sequence. One invocation per element of the new rows.
@group(0) @binding(1) var<storage, read> ka_k: array<f32>;
@group(0) @binding(2) var<storage, read> ka_v: array<f32>;
@group(0) @binding(3) var<storage, read_write> ka_cache_k: array<f32>;
@group(0) @binding(4) var<storage, read_write> ka_cache_v: array<f32>;

@compute @workgroup_size(256)
fn kv_cache_append(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 256u;
  let width = cp.kv_heads * cp.head_dim;
  if (e >= cp.batch * cp.q_len * width) { return; }
  let token = e / width; // = b * q_len + t
  let b = token / cp.q_len;
  let dst = (b * cp.kv_len + cp.q_offset + token % cp.q_len) * width + e % width;
  ka_cache_k[dst] = ka_k[e];
  ka_cache_v[dst] = ka_v[e];
}
