// Sentence pooling over hidden states [B, T, H] with a pooling mask [B, T] (1 = a token that counts),
// the six modes of sentence-transformers' Pooling module. Five of them are a weighted sum of the
// token states, out[b] = sum_t w[b, t]·hidden[b, t], with weights that depend on the mask only:
// pool_weights computes w once per sequence, and the forward and backward kernels share it. Max
// pooling records, per output element, the token it took, for the backward.
// Every kernel runs one invocation per output element (or sequence), folded over a 2-D grid, and
// sums over tokens in order, so results are deterministic.

// mode: 0 cls, 1 mean, 2 mean-sqrt-len, 3 weighted-mean, 4 last-token (pool_weights only)
struct PoolParams { batch: u32, seq: u32, hidden: u32, mode: u32 }

@group(0) @binding(0) var<uniform> pp: PoolParams;

// What max pooling sees at a token outside the mask (sentence-transformers writes -1e9 there).
const MASKED_VALUE = -1e9;
// A max-pooled element that came from a masked token: no gradient flows back.
const NO_TOKEN = 0xffffffffu;

fn element_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// pool_weights: weights[b, t] of the weighted-sum modes.
//   cls:           1 at t = 0 (the mask is not consulted)
//   mean:          mask / max(sum mask, 1e-9)
//   mean-sqrt-len: mask / sqrt(max(sum mask, 1e-9))
//   weighted-mean: mask·(t+1) / max(sum mask·(t+1), 1e-9)   (position weights 1..T)
//   last-token:    mask at the last t with mask ≠ 0, else 0
@group(0) @binding(1) var<storage, read> pw_mask: array<f32>;
@group(0) @binding(2) var<storage, read_write> pw_weights: array<f32>;

@compute @workgroup_size(256)
fn pool_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = element_index(gid, nwg);
  if (b >= pp.batch) { return; }
  let row = b * pp.seq;
  var count = 0.0;
  var positions = 0.0;
  var last = NO_TOKEN;
  for (var t = 0u; t < pp.seq; t++) {
    let m = pw_mask[row + t];
    count += m;
    positions += m * f32(t + 1u);
    if (m != 0.0) { last = t; }
  }
  for (var t = 0u; t < pp.seq; t++) {
    let m = pw_mask[row + t];
    var w = 0.0;
    switch pp.mode {
      case 0u: { w = select(0.0, 1.0, t == 0u); }
      case 1u: { w = m / max(count, 1e-9); }
      case 2u: { w = m / sqrt(max(count, 1e-9)); }
      case 3u: { w = m * f32(t + 1u) / max(positions, 1e-9); }
      default: { w = select(0.0, m, t == last); }
    }
    pw_weights[row + t] = w;
  }
}

// weighted_pool_forward: out[b, d] = sum_t weights[b, t] * hidden[b, t, d]
@group(0) @binding(1) var<storage, read> wpf_hidden: array<f32>;
@group(0) @binding(2) var<storage, read> wpf_weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> wpf_out: array<f32>;

@compute @workgroup_size(256)
fn weighted_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element_index(gid, nwg);
  if (i >= pp.batch * pp.hidden) { return; }
  let b = i / pp.hidden;
  let d = i % pp.hidden;
  var sum = 0.0;
  for (var t = 0u; t < pp.seq; t++) {
    sum += wpf_weights[b * pp.seq + t] * wpf_hidden[(b * pp.seq + t) * pp.hidden + d];
  }
  wpf_out[i] = sum;
}

// weighted_pool_backward: dHidden[b, t, d] = weights[b, t] * dOut[b, d]
@group(0) @binding(1) var<storage, read> wpb_weights: array<f32>;
@group(0) @binding(2) var<storage, read> wpb_dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> wpb_dhidden: array<f32>;

@compute @workgroup_size(256)
fn weighted_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element_index(gid, nwg);
  if (i >= pp.batch * pp.seq * pp.hidden) { return; }
  let token = i / pp.hidden;
  let b = token / pp.seq;
  wpb_dhidden[i] = wpb_weights[token] * wpb_dout[b * pp.hidden + i % pp.hidden];
}

// max_pool_forward: out[b, d] = max_t v[b, t, d] with v = hidden where mask ≠ 0, else -1e9; the
// first token reaching the maximum wins. argmax[b, d] = that token, or NO_TOKEN when it is masked.
@group(0) @binding(1) var<storage, read> mxf_hidden: array<f32>;
@group(0) @binding(2) var<storage, read> mxf_mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> mxf_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> mxf_argmax: array<u32>;

@compute @workgroup_size(256)
fn max_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element_index(gid, nwg);
  if (i >= pp.batch * pp.hidden) { return; }
  let b = i / pp.hidden;
  let d = i % pp.hidden;
  var best = 0.0;
  var arg = 0u;
  for (var t = 0u; t < pp.seq; t++) {
    let masked = mxf_mask[b * pp.seq + t] == 0.0;
    let v = select(mxf_hidden[(b * pp.seq + t) * pp.hidden + d], MASKED_VALUE, masked);
    if (t == 0u || v > best) {
      best = v;
      arg = select(t, NO_TOKEN, masked);
    }
  }
  mxf_out[i] = best;
  mxf_argmax[i] = arg;
}

// max_pool_backward: dHidden[b, t, d] = dOut[b, d] where t = argmax[b, d], else 0
@group(0) @binding(1) var<storage, read> mxb_argmax: array<u32>;
@group(0) @binding(2) var<storage, read> mxb_dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> mxb_dhidden: array<f32>;

@compute @workgroup_size(256)
fn max_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element_index(gid, nwg);
  if (i >= pp.batch * pp.seq * pp.hidden) { return; }
  let token = i / pp.hidden;
  let b = token / pp.seq;
  let o = b * pp.hidden + i % pp.hidden;
  mxb_dhidden[i] = select(0.0, mxb_dout[o], mxb_argmax[o] == token % pp.seq);
}
