// Elementwise activations. BERT's GELU is the exact erf form: gelu(x) = x * Phi(x).

// erf by Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7), odd-symmetric.
fn erf_approx(x: f32) -> f32 {
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  let r = 1.0 - poly * exp(-a * a);
  return select(-r, r, x >= 0.0);
}

fn gelu(x: f32) -> f32 {
  return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476));
}

// d/dx x*Phi(x) = Phi(x) + x*phi(x)
fn gelu_grad(x: f32) -> f32 {
  let cdf = 0.5 * (1.0 + erf_approx(x * 0.7071067811865476));
  let pdf = 0.3989422804014327 * exp(-0.5 * x * x);
  return cdf + x * pdf;
}

struct ElementwiseParams { n: u32, row_stride: u32 }

@group(0) @binding(0) var<uniform> ew: ElementwiseParams;

// gelu_forward: y = gelu(x)
@group(0) @binding(1) var<storage, read> gelu_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> gelu_y: array<f32>;

@compute @workgroup_size(256)
fn gelu_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * ew.row_stride;
  if (i >= ew.n) { return; }
  gelu_y[i] = gelu(gelu_x[i]);
}

// gelu_backward: dx = dy * gelu'(x)
@group(0) @binding(1) var<storage, read> gelub_x: array<f32>;
@group(0) @binding(2) var<storage, read> gelub_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gelub_dx: array<f32>;

@compute @workgroup_size(256)
fn gelu_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * ew.row_stride;
  if (i >= ew.n) { return; }
  gelub_dx[i] = gelub_dy[i] * gelu_grad(gelub_x[i]);
}

// gelu_backward_packed: as gelu_backward, x read from f16 halves packed two per u32 (half.wgsl's
// layout: element 2k low, 2k + 1 high); unpacking is exact, so dx equals gelu_backward's on the
// unpacked x, without an f32 copy of x.
@group(0) @binding(1) var<storage, read> gelubp_x: array<u32>;
@group(0) @binding(2) var<storage, read> gelubp_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gelubp_dx: array<f32>;

@compute @workgroup_size(256)
fn gelu_backward_packed(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * ew.row_stride;
  if (i >= ew.n) { return; }
  let x = unpack2x16float(gelubp_x[i >> 1u])[i & 1u];
  gelubp_dx[i] = gelubp_dy[i] * gelu_grad(x);
}
