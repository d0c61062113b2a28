// Inverted dropout. Needs random.wgsl in front (dropout_keep).
// Forward (x -> y) and backward (dy -> dx) are the same map: keep, and scale by 1/(1-p), where the
// mask says so; both launchers use this one entry point.

struct DropoutParams {
  n: u32,
  seed: u32,
  keep_threshold: u32, // ceil(p * 2^32)
  keep_scale: f32,     // 1 / (1 - p)
  index_offset: u32,   // added to i before hashing: a slice of a larger tensor draws its place's mask
}

@group(0) @binding(0) var<uniform> dp: DropoutParams;
@group(0) @binding(1) var<storage, read> dropout_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> dropout_out: array<f32>;

@compute @workgroup_size(256)
fn dropout_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= dp.n) { return; }
  let keep = dropout_keep(dp.seed, i + dp.index_offset, dp.keep_threshold);
  dropout_out[i] = select(0.0, dropout_in[i] * dp.keep_scale, keep);
}
