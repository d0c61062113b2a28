// Sentence pooling over hidden states [B, T, H] with a padding mask [B, T] (1 = real token).
// Mean pooling is sentence-transformers' sum(mask·h) / max(sum(mask), 1e-9); its denominators are
// computed once per sequence (pool_denominators) and shared by the forward and backward kernels.
// Every kernel runs one invocation per output element (or sequence), folded over a 2-D grid, and
// sums over tokens in order, so results are deterministic.

struct PoolParams { batch: u32, seq: u32, hidden: u32 }

@group(0) @binding(0) var<uniform> pp: PoolParams;

fn element_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// pool_denominators: denominators[b] = max(sum_t mask[b, t], 1e-9)
@group(0) @binding(1) var<storage, read> pd_mask: array<f32>;
@group(0) @binding(2) var<storage, read_write> pd_denominators: array<f32>;

@compute @workgroup_size(256)
fn pool_denominators(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = element_index(gid, nwg);
  if (b >= pp.batch) { return; }
  var count = 0.0;
  for (var t = 0u; t < pp.seq; t++) { count += pd_mask[b * pp.seq + t]; }
  pd_denominators[b] = max(count, 1e-9);
}

// mean_pool_forward: out[b, d] = sum_t mask[b, t] * hidden[b, t, d] / denominators[b]
@group(0) @binding(1) var<storage, read> mpf_hidden: array<f32>;
@group(0) @binding(2) var<storage, read> mpf_mask: array<f32>;
@group(0) @binding(3) var<storage, read> mpf_denominators: array<f32>;
@group(0) @binding(4) var<storage, read_write> mpf_out: array<f32>;

@compute @workgroup_size(256)
fn mean_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element_index(gid, nwg);
  if (i >= pp.batch * pp.hidden) { return; }
  let b = i / pp.hidden;
  let d = i % pp.hidden;
  var sum = 0.0;
  for (var t = 0u; t < pp.seq; t++) {
    sum += mpf_mask[b * pp.seq + t] * mpf_hidden[(b * pp.seq + t) * pp.hidden + d];
  }
  mpf_out[i] = sum / mpf_denominators[b];
}

// mean_pool_backward: dHidden[b, t, d] = mask[b, t] * dOut[b, d] / denominators[b]
@group(0) @binding(1) var<storage, read> mpb_mask: array<f32>;
@group(0) @binding(2) var<storage, read> mpb_dout: array<f32>;
@group(0) @binding(3) var<storage, read> mpb_denominators: array<f32>;
@group(0) @binding(4) var<storage, read_write> mpb_dhidden: array<f32>;

@compute @workgroup_size(256)
fn mean_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element_index(gid, nwg);
  if (i >= pp.batch * pp.seq * pp.hidden) { return; }
  let token = i / pp.hidden;
  let b = token / pp.seq;
  let d = i % pp.hidden;
  mpb_dhidden[i] = mpb_mask[token] * mpb_dout[b * pp.hidden + d] / mpb_denominators[b];
}

// cls_pool_forward: out[b, d] = hidden[b, 0, d]
@group(0) @binding(1) var<storage, read> cpf_hidden: array<f32>;
@group(0) @binding(2) var<storage, read_write> cpf_out: array<f32>;

@compute @workgroup_size(256)
fn cls_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element_index(gid, nwg);
  if (i >= pp.batch * pp.hidden) { return; }
  cpf_out[i] = cpf_hidden[(i / pp.hidden) * pp.seq * pp.hidden + i % pp.hidden];
}

// cls_pool_backward: dHidden[b, t, d] = dOut[b, d] at t = 0, else 0
@group(0) @binding(1) var<storage, read> cpb_dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> cpb_dhidden: array<f32>;

@compute @workgroup_size(256)
fn cls_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element_index(gid, nwg);
  if (i >= pp.batch * pp.seq * pp.hidden) { return; }
  let token = i / pp.hidden;
  cpb_dhidden[i] = select(0.0, cpb_dout[(token / pp.seq) * pp.hidden + i % pp.hidden], token % pp.seq == 0u);
}
