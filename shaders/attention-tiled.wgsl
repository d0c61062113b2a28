// Attention forward tiled over K/V (flash-style), for long sequences (512 tokens) on real GPUs.
// Concatenated after attention.wgsl (AttentionParams, token_offset, softmax_weight, MASKED_SCORE).
//
// A workgroup serves ATTN_WG query rows of one (batch, head), one row per invocation. Keys and values
// are walked KV_TILE at a time: the workgroup stages the tile's K and V rows in workgroup memory once
// (each value read from memory once per workgroup, not once per query row), then every invocation
// folds the tile into its online softmax: running max m, running sum l of exp(s - m) and the context
// accumulator, all rescaled when m grows. Keys are visited in order 0..T-1 with the same update as
// attention_forward's first pass, so m and l are bit-identical to it. No probs are written: the
// row statistics (m, l) are, and attention_probs recomputes probs from them for the backward.

const KV_TILE = 16u;
const TILED_MAX_HEAD_DIM = 128u;

var<workgroup> kv_keys: array<f32, KV_TILE * TILED_MAX_HEAD_DIM>;
var<workgroup> kv_values: array<f32, KV_TILE * TILED_MAX_HEAD_DIM>;

@group(0) @binding(1) var<storage, read> aft_q: array<f32>;
@group(0) @binding(2) var<storage, read> aft_k: array<f32>;
@group(0) @binding(3) var<storage, read> aft_v: array<f32>;
@group(0) @binding(4) var<storage, read> aft_mask: array<f32>;
@group(0) @binding(5) var<storage, read_write> aft_context: array<f32>;
@group(0) @binding(6) var<storage, read_write> aft_stats: array<f32>; // [B, heads, T, 2]: m, l

@compute @workgroup_size(ATTN_WG)
fn attention_forward_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lane: u32) {
  let row_tiles = (ap.seq + ATTN_WG - 1u) / ATTN_WG;
  let group = wid.x + wid.y * nwg.x;
  let bh = group / row_tiles;
  if (bh >= ap.batch * ap.heads) { return; } // a whole padding workgroup of the folded grid
  let b = bh / ap.heads;
  let h = bh % ap.heads;
  let row = (group % row_tiles) * ATTN_WG + lane;
  let in_sequence = row < ap.seq;
  let qo = token_offset(b, min(row, ap.seq - 1u), h); // rows past the end compute on a valid row and store nothing
  var q: array<f32, TILED_MAX_HEAD_DIM>;
  for (var d = 0u; d < ap.head_dim; d++) { q[d] = aft_q[qo + d]; }
  var acc: array<f32, TILED_MAX_HEAD_DIM>;
  var m = MASKED_SCORE;
  var l = 0.0;
  let tile_values = KV_TILE * ap.head_dim;
  for (var j0 = 0u; j0 < ap.seq; j0 += KV_TILE) {
    for (var e = lane; e < tile_values; e += ATTN_WG) {
      let j = min(j0 + e / ap.head_dim, ap.seq - 1u);
      let o = token_offset(b, j, h) + e % ap.head_dim;
      kv_keys[e] = aft_k[o];
      kv_values[e] = aft_v[o];
    }
    workgroupBarrier();
    let count = min(KV_TILE, ap.seq - j0);
    for (var t = 0u; t < count; t++) {
      var s = 0.0;
      for (var d = 0u; d < ap.head_dim; d++) { s += q[d] * kv_keys[t * ap.head_dim + d]; }
      s = s * ap.scale + (1.0 - aft_mask[b * ap.seq + j0 + t]) * MASKED_SCORE;
      // The key's weight relative to the running max, and the rescale of what came before.
      var w = 1.0;
      var rescale = 1.0;
      if (s > m) {
        rescale = softmax_weight(m - s);
        m = s;
      } else {
        w = softmax_weight(s - m);
      }
      l = l * rescale + w;
      for (var d = 0u; d < ap.head_dim; d++) { acc[d] = acc[d] * rescale + w * kv_values[t * ap.head_dim + d]; }
    }
    workgroupBarrier();
  }
  if (in_sequence) {
    for (var d = 0u; d < ap.head_dim; d++) { aft_context[qo + d] = acc[d] / l; }
    let so = (bh * ap.seq + row) * 2u;
    aft_stats[so] = m;
    aft_stats[so + 1u] = l;
  }
}

// attention_probs: probs[b, h, i, j] = exp(s_ij - m_i) / l_i from the tiled forward's statistics, as
// attention_forward's second pass computes them; one invocation per element.
@group(0) @binding(1) var<storage, read> apr_q: array<f32>;
@group(0) @binding(2) var<storage, read> apr_k: array<f32>;
@group(0) @binding(3) var<storage, read> apr_mask: array<f32>;
@group(0) @binding(4) var<storage, read> apr_stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> apr_probs: array<f32>;

@compute @workgroup_size(ATTN_WG)
fn attention_probs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let index = gid.x + gid.y * nwg.x * ATTN_WG; // = ((b * heads + h) * T + i) * T + j
  if (index >= ap.batch * ap.heads * ap.seq * ap.seq) { return; }
  let j = index % ap.seq;
  let row = index / ap.seq; // (b * heads + h) * T + i
  let bh = row / ap.seq;
  let b = bh / ap.heads;
  let h = bh % ap.heads;
  let qo = token_offset(b, row % ap.seq, h);
  let ko = token_offset(b, j, h);
  var s = 0.0;
  for (var d = 0u; d < ap.head_dim; d++) { s += apr_q[qo + d] * apr_k[ko + d]; }
  s = s * ap.scale + (1.0 - apr_mask[b * ap.seq + j]) * MASKED_SCORE;
  apr_probs[index] = softmax_weight(s - apr_stats[row * 2u]) / apr_stats[row * 2u + 1u];
}
