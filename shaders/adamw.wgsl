// AdamW (torch.optim.AdamW) after global grad-norm clipping (torch.nn.utils.clip_grad_norm_), with
// the norm computed on the GPU: grad_sq_partials (per grad tensor, one partial sum of squares per
// 1024-element chunk) → grad_norm_finish (one workgroup: sqrt of the sum of all partials) →
// adamw_update (per parameter tensor; reads the norm). Fixed chunking and tree order: deterministic.
// Needs reduce.wgsl in front (workgroup_sum).

const CHUNK: u32 = 1024u; // elements per partial sum (4 per lane)

// ---------------------------------------------------------------- grad_sq_partials
struct PartialsParams {
  n: u32,
  offset: u32, // where this tensor's partials start
}

@group(0) @binding(0) var<uniform> pp: PartialsParams;
@group(0) @binding(1) var<storage, read> sq_grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> sq_partials: array<f32>;

@compute @workgroup_size(256)
fn grad_sq_partials(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let chunk = wid.x + wid.y * nwg.x;
  let start = chunk * CHUNK;
  if (start >= pp.n) { return; }
  var sum = 0.0;
  for (var e = start + lane; e < min(start + CHUNK, pp.n); e += LANES) {
    let g = sq_grad[e];
    sum += g * g;
  }
  let total = workgroup_sum(lane, sum);
  if (lane == 0u) { sq_partials[pp.offset + chunk] = total; }
}

// ---------------------------------------------------------------- grad_norm_finish
struct FinishParams {
  count: u32,
}

@group(0) @binding(0) var<uniform> fp: FinishParams;
@group(0) @binding(1) var<storage, read> finish_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> finish_norm: array<f32>;

@compute @workgroup_size(256)
fn grad_norm_finish(@builtin(local_invocation_index) lane: u32) {
  var sum = 0.0;
  for (var e = lane; e < fp.count; e += LANES) { sum += finish_partials[e]; }
  let total = workgroup_sum(lane, sum);
  if (lane == 0u) { finish_norm[0] = sqrt(total); }
}

// ---------------------------------------------------------------- adamw_update
struct UpdateParams {
  n: u32,
  clip: u32,          // 1: scale grads by min(max_norm / (norm + 1e-6), 1)
  max_norm: f32,
  decay: f32,         // 1 - lr * weight_decay
  beta1: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
  step_size: f32,     // lr / (1 - beta1^step)
  bias2_sqrt: f32,    // sqrt(1 - beta2^step)
  eps: f32,
}

@group(0) @binding(0) var<uniform> up: UpdateParams;
@group(0) @binding(1) var<storage, read> upd_grad: array<f32>;
@group(0) @binding(2) var<storage, read> upd_norm: array<f32>;
@group(0) @binding(3) var<storage, read_write> upd_param: array<f32>;
@group(0) @binding(4) var<storage, read_write> upd_m: array<f32>;
@group(0) @binding(5) var<storage, read_write> upd_v: array<f32>;

@compute @workgroup_size(256)
fn adamw_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= up.n) { return; }
  // A NaN/Inf anywhere in the gradients makes the global norm non-finite: skip the whole update so
  // parameters and moments keep their last good values (checked on the bits: WGSL may assume finite math).
  if ((bitcast<u32>(upd_norm[0]) & 0x7f800000u) == 0x7f800000u) { return; }
  var g = upd_grad[i];
  if (up.clip != 0u) { g *= min(up.max_norm / (upd_norm[0] + 1e-6), 1.0); }
  let m = up.beta1 * upd_m[i] + up.one_minus_beta1 * g;
  let v = up.beta2 * upd_v[i] + up.one_minus_beta2 * g * g;
  upd_m[i] = m;
  upd_v[i] = v;
  // Decoupled decay first, then the Adam step, in torch's order.
  let p = upd_param[i] * up.decay;
  upd_param[i] = p - up.step_size * m / (sqrt(v) / up.bias2_sqrt + up.eps);
}
