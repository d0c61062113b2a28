// Row-wise L2 normalisation as torch.nn.functional.normalize: y = x / max(||x||, 1e-12), with the
// raw norms saved for the backward:
//   ||x|| ≥ eps: dx = (dy - y (y·dy)) / ||x||     ||x|| < eps: dx = dy / eps (the clamp is constant)
// Needs row-reduce.wgsl in front (row_slot, row_sum).

const NORM_EPS = 1e-12;

struct RowParams { rows: u32, width: u32 }

@group(0) @binding(0) var<uniform> rp: RowParams;

// l2norm_forward
@group(0) @binding(1) var<storage, read> lf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> lf_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> lf_norms: array<f32>;

@compute @workgroup_size(ROW_LANES * ROWS_PER_WG)
fn l2norm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let at = row_slot(wid, nwg, lid);
  let end = select(0u, rp.width, at.row < rp.rows);
  let base = at.row * rp.width;
  var squares = 0.0;
  for (var j = at.lane; j < end; j += ROW_LANES) { squares += lf_x[base + j] * lf_x[base + j]; }
  let norm = sqrt(row_sum(at, squares));
  let denom = max(norm, NORM_EPS);
  for (var j = at.lane; j < end; j += ROW_LANES) { lf_y[base + j] = lf_x[base + j] / denom; }
  if (at.lane == 0u && at.row < rp.rows) { lf_norms[at.row] = norm; }
}

// l2norm_backward
@group(0) @binding(1) var<storage, read> lb_y: array<f32>;
@group(0) @binding(2) var<storage, read> lb_norms: array<f32>;
@group(0) @binding(3) var<storage, read> lb_dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> lb_dx: array<f32>;

@compute @workgroup_size(ROW_LANES * ROWS_PER_WG)
fn l2norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let at = row_slot(wid, nwg, lid);
  let end = select(0u, rp.width, at.row < rp.rows);
  let base = at.row * rp.width;
  var projection = 0.0;
  for (var j = at.lane; j < end; j += ROW_LANES) { projection += lb_y[base + j] * lb_dy[base + j]; }
  let y_dot_dy = row_sum(at, projection);
  let norm = lb_norms[min(at.row, rp.rows - 1u)]; // lanes past the end read a valid row and use nothing
  let clamped = norm < NORM_EPS;
  for (var j = at.lane; j < end; j += ROW_LANES) {
    let dy = lb_dy[base + j];
    lb_dx[base + j] = select((dy - lb_y[base + j] * y_dot_dy) / norm, dy / NORM_EPS, clamped);
  }
}
