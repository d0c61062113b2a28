// Scaled dot-product attention with BERT's additive padding mask, forward and backward.
//
// q, k, v, context and their gradients are [B, T, heads * D] (as X·Wᵀ produces them); head h of
// token t is the slice [h*D, (h+1)*D) of row t. probs and the dS scratch are [B, heads, T, T].
// Every kernel gives one invocation a whole (batch, head, row) and walks the T keys (or queries)
// in order, so sums are sequential and deterministic. Its head-dim vectors live in private arrays
// of MAX_HEAD_DIM; K/V rows are read at the same address by neighbouring invocations (same batch and
// head), which GPUs serve as broadcasts. No barriers: those dominate on CPU-emulated GPUs.
//
// Forward:  s_ij = q_i·k_j * scale + (1 - mask_j) * f32::MIN,  P = softmax_j(s),  C_i = Σ_j P_ij v_j
// Backward: dP_ij = dC_i·v_j,  dS_ij = P_ij (dP_ij - Σ_j' P_ij' dP_ij'),
//           dQ_i = scale Σ_j dS_ij k_j,  dK_j = scale Σ_i dS_ij q_i,  dV_j = Σ_i P_ij dC_i

const ATTN_WG = 64u;
const MAX_HEAD_DIM = 256u;
// Hugging Face BERT's additive mask value, torch.finfo(float32).min. A padded key's score is this
// value exactly (any real score is lost in rounding), so a row with any real key gives padded keys
// probability exactly 0, and a row with none gives every key 1/T, as in PyTorch.
const MASKED_SCORE = -3.4028234663852886e38;

struct AttentionParams { batch: u32, seq: u32, heads: u32, head_dim: u32, scale: f32 }

@group(0) @binding(0) var<uniform> ap: AttentionParams;

// One (batch, head, row) per invocation, folded over a 2-D grid. `row` is the query row for the
// forward and dQ kernels and the key row for the dK/dV kernel.
struct HeadRow { b: u32, h: u32, row: u32, index: u32, valid: bool }

fn head_row(gid: vec3<u32>, nwg: vec3<u32>) -> HeadRow {
  let index = gid.x + gid.y * nwg.x * ATTN_WG; // = (b * heads + h) * T + row
  let bh = index / ap.seq;
  return HeadRow(bh / ap.heads, bh % ap.heads, index % ap.seq, index, index < ap.batch * ap.heads * ap.seq);
}

// Offset of head h of token t in a [B, T, heads * D] tensor.
fn token_offset(b: u32, t: u32, h: u32) -> u32 {
  return ((b * ap.seq + t) * ap.heads + h) * ap.head_dim;
}

// exp(d) for d = s - max ≤ 0; 0 exactly below -104, where the f32 result underflows to 0 anyway,
// so masked keys get exactly 0 whatever the accuracy of the platform's exp for huge arguments.
fn softmax_weight(d: f32) -> f32 {
  return select(0.0, exp(d), d > -104.0);
}

// attention_forward: probs and context for one query row.
@group(0) @binding(1) var<storage, read> af_q: array<f32>;
@group(0) @binding(2) var<storage, read> af_k: array<f32>;
@group(0) @binding(3) var<storage, read> af_v: array<f32>;
@group(0) @binding(4) var<storage, read> af_mask: array<f32>;
@group(0) @binding(5) var<storage, read_write> af_context: array<f32>;
@group(0) @binding(6) var<storage, read_write> af_probs: array<f32>;

fn masked_score(q: ptr<function, array<f32, MAX_HEAD_DIM>>, b: u32, h: u32, j: u32) -> f32 {
  let ko = token_offset(b, j, h);
  var s = 0.0;
  for (var d = 0u; d < ap.head_dim; d++) { s += (*q)[d] * af_k[ko + d]; }
  return s * ap.scale + (1.0 - af_mask[b * ap.seq + j]) * MASKED_SCORE;
}

@compute @workgroup_size(ATTN_WG)
fn attention_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = head_row(gid, nwg);
  if (!at.valid) { return; }
  let qo = token_offset(at.b, at.row, at.h);
  var q: array<f32, MAX_HEAD_DIM>;
  for (var d = 0u; d < ap.head_dim; d++) { q[d] = af_q[qo + d]; }
  // Pass 1: running max and rescaled sum of exp (online softmax), one score per key.
  var mx = masked_score(&q, at.b, at.h, 0u);
  var total = 1.0;
  for (var j = 1u; j < ap.seq; j++) {
    let s = masked_score(&q, at.b, at.h, j);
    if (s > mx) {
      total = total * softmax_weight(mx - s) + 1.0;
      mx = s;
    } else {
      total += softmax_weight(s - mx);
    }
  }
  // Pass 2: probabilities (recomputing the scores) and context = probs · V.
  var context: array<f32, MAX_HEAD_DIM>;
  let prow = at.index * ap.seq;
  for (var j = 0u; j < ap.seq; j++) {
    let p = softmax_weight(masked_score(&q, at.b, at.h, j) - mx) / total;
    af_probs[prow + j] = p;
    let vo = token_offset(at.b, j, at.h);
    for (var d = 0u; d < ap.head_dim; d++) { context[d] += p * af_v[vo + d]; }
  }
  for (var d = 0u; d < ap.head_dim; d++) { af_context[qo + d] = context[d]; }
}

// attention_backward_query: dS for one query row (into the scratch, for the dK kernel) and dQ.
@group(0) @binding(1) var<storage, read> abq_k: array<f32>;
@group(0) @binding(2) var<storage, read> abq_v: array<f32>;
@group(0) @binding(3) var<storage, read> abq_probs: array<f32>;
@group(0) @binding(4) var<storage, read> abq_dcontext: array<f32>;
@group(0) @binding(5) var<storage, read_write> abq_dq: array<f32>;
@group(0) @binding(6) var<storage, read_write> abq_ds: array<f32>;

@compute @workgroup_size(ATTN_WG)
fn attention_backward_query(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = head_row(gid, nwg);
  if (!at.valid) { return; }
  let qo = token_offset(at.b, at.row, at.h);
  var dc: array<f32, MAX_HEAD_DIM>;
  for (var d = 0u; d < ap.head_dim; d++) { dc[d] = abq_dcontext[qo + d]; }
  let prow = at.index * ap.seq;
  // Pass 1: dP_ij = dC_i · v_j (kept in the scratch) and Σ_j P_ij dP_ij.
  var weighted = 0.0;
  for (var j = 0u; j < ap.seq; j++) {
    let vo = token_offset(at.b, j, at.h);
    var dp = 0.0;
    for (var d = 0u; d < ap.head_dim; d++) { dp += dc[d] * abq_v[vo + d]; }
    abq_ds[prow + j] = dp;
    weighted += abq_probs[prow + j] * dp;
  }
  // Pass 2: dS_ij = P_ij (dP_ij - Σ) and dQ_i = scale Σ_j dS_ij k_j.
  var dq: array<f32, MAX_HEAD_DIM>;
  for (var j = 0u; j < ap.seq; j++) {
    let ds = abq_probs[prow + j] * (abq_ds[prow + j] - weighted);
    abq_ds[prow + j] = ds;
    let ko = token_offset(at.b, j, at.h);
    for (var d = 0u; d < ap.head_dim; d++) { dq[d] += ds * abq_k[ko + d]; }
  }
  for (var d = 0u; d < ap.head_dim; d++) { abq_dq[qo + d] = dq[d] * ap.scale; }
}

// attention_backward_key: dK and dV for one key row, from column j of dS and P.
@group(0) @binding(1) var<storage, read> abk_q: array<f32>;
@group(0) @binding(2) var<storage, read> abk_probs: array<f32>;
@group(0) @binding(3) var<storage, read> abk_dcontext: array<f32>;
@group(0) @binding(4) var<storage, read> abk_ds: array<f32>;
@group(0) @binding(5) var<storage, read_write> abk_dk: array<f32>;
@group(0) @binding(6) var<storage, read_write> abk_dv: array<f32>;

@compute @workgroup_size(ATTN_WG)
fn attention_backward_key(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = head_row(gid, nwg);
  if (!at.valid) { return; }
  let column = (at.index - at.row) * ap.seq + at.row; // element (0, j) of this head's [T, T] block
  var dk: array<f32, MAX_HEAD_DIM>;
  var dv: array<f32, MAX_HEAD_DIM>;
  for (var i = 0u; i < ap.seq; i++) {
    let ds = abk_ds[column + i * ap.seq];
    let p = abk_probs[column + i * ap.seq];
    let qo = token_offset(at.b, i, at.h);
    for (var d = 0u; d < ap.head_dim; d++) {
      dk[d] += ds * abk_q[qo + d];
      dv[d] += p * abk_dcontext[qo + d];
    }
  }
  let ko = token_offset(at.b, at.row, at.h);
  for (var d = 0u; d < ap.head_dim; d++) {
    abk_dk[ko + d] = dk[d] * ap.scale;
    abk_dv[ko + d] = dv[d];
  }
}
