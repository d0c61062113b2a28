// RMSNorm over rows of length H (Llama, Qwen, Mistral, Phi-3; Qwen3's per-head q/k norm is the same
// op on [tokens·heads, headDim]): y = x * rstd * weight, rstd = 1/sqrt(mean(x^2) + eps).
// Needs row-reduce.wgsl in front (row_slot, row_sum).

struct RmsParams { rows: u32, width: u32, eps: f32 }

@group(0) @binding(0) var<uniform> rp: RmsParams;

// rmsnorm_forward: y and the saved rstd [R].
@group(0) @binding(1) var<storage, read> rnf_x: array<f32>;
@group(0) @binding(2) var<storage, read> rnf_weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> rnf_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rnf_rstd: array<f32>;

@compute @workgroup_size(ROW_LANES * ROWS_PER_WG)
fn rmsnorm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let at = row_slot(wid, nwg, lid);
  let end = select(0u, rp.width, at.row < rp.rows);
  let base = at.row * rp.width;
  var ss = 0.0;
  for (var j = at.lane; j < end; j += ROW_LANES) {
    let x = rnf_x[base + j];
    ss += x * x;
  }
  let rstd = inverseSqrt(row_sum(at, ss) / f32(rp.width) + rp.eps);
  for (var j = at.lane; j < end; j += ROW_LANES) { rnf_y[base + j] = rnf_x[base + j] * rstd * rnf_weight[j]; }
  if (at.lane == 0u && at.row < rp.rows) { rnf_rstd[at.row] = rstd; }
}

// rmsnorm_backward: with g = weight * dy and xhat = x * rstd, dx = rstd * (g - xhat * mean(g * xhat)).
@group(0) @binding(1) var<storage, read> rnb_x: array<f32>;
@group(0) @binding(2) var<storage, read> rnb_weight: array<f32>;
@group(0) @binding(3) var<storage, read> rnb_rstd: array<f32>;
@group(0) @binding(4) var<storage, read> rnb_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> rnb_dx: array<f32>;

@compute @workgroup_size(ROW_LANES * ROWS_PER_WG)
fn rmsnorm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let at = row_slot(wid, nwg, lid);
  let end = select(0u, rp.width, at.row < rp.rows);
  let base = at.row * rp.width;
  let rstd = rnb_rstd[min(at.row, rp.rows - 1u)]; // lanes past the end read a valid row and use nothing
  var sgx = 0.0;
  for (var j = at.lane; j < end; j += ROW_LANES) {
    sgx += rnb_weight[j] * rnb_dy[base + j] * rnb_x[base + j] * rstd;
  }
  let mean_gx = row_sum(at, sgx) / f32(rp.width);
  for (var j = at.lane; j < end; j += ROW_LANES) {
    let xhat = rnb_x[base + j] * rstd;
    rnb_dx[base + j] = rstd * (rnb_weight[j] * rnb_dy[base + j] - xhat * mean_gx);
  }
}

// rmsnorm_weight_grad: dweight[j] = sum_r dy[r, j] * x[r, j] * rstd[r], one column per invocation,
// rows in order (deterministic). Only needed when the norm weight trains; QLoRA keeps it frozen.
@group(0) @binding(1) var<storage, read> rnw_x: array<f32>;
@group(0) @binding(2) var<storage, read> rnw_rstd: array<f32>;
@group(0) @binding(3) var<storage, read> rnw_dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> rnw_dweight: array<f32>;

@compute @workgroup_size(64)
fn rmsnorm_weight_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let col = gid.x + gid.y * nwg.x * 64u;
  if (col >= rp.width) { return; }
  var g = 0.0;
  for (var r = 0u; r < rp.rows; r++) {
    let i = r * rp.width + col;
    g += rnw_dy[i] * rnw_x[i] * rnw_rstd[r];
  }
  rnw_dweight[col] = g;
}
