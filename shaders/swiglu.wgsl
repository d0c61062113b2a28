// SwiGLU, the gated MLP activation of Llama-family models: out = silu(gate) * up, silu(g) = g * sigmoid(g).
// Backward: dgate = dout * up * sigmoid(g) * (1 + g * (1 - sigmoid(g))), dup = dout * silu(g).
// gate, up, out: [rows, inter]. The fused entry points read Phi-3's gate_up_proj output
// [rows, 2 * inter] (gate in the first half of each row, up in the second) and write its gradient
// in the same layout. One invocation per output element.

struct SwigluParams { rows: u32, inter: u32 }

@group(0) @binding(0) var<uniform> sp: SwigluParams;

fn sigmoid(g: f32) -> f32 {
  return 1.0 / (1.0 + exp(-g)); // exp overflows to inf for g < -88: 1/inf = 0, as it should
}

// (dgate, dup) for one element.
fn swiglu_grads(g: f32, u: f32, dout: f32) -> vec2<f32> {
  let s = sigmoid(g);
  return vec2<f32>(dout * u * s * (1.0 + g * (1.0 - s)), dout * g * s);
}

fn element(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// Offset of gate element (row, j) in the fused [rows, 2 * inter] layout; up is `inter` further.
fn fused_offset(i: u32) -> u32 {
  return i + (i / sp.inter) * sp.inter;
}

// swiglu_forward
@group(0) @binding(1) var<storage, read> sf_gate: array<f32>;
@group(0) @binding(2) var<storage, read> sf_up: array<f32>;
@group(0) @binding(3) var<storage, read_write> sf_out: array<f32>;

@compute @workgroup_size(256)
fn swiglu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element(gid, nwg);
  if (i >= sp.rows * sp.inter) { return; }
  let g = sf_gate[i];
  sf_out[i] = g * sigmoid(g) * sf_up[i];
}

// swiglu_backward
@group(0) @binding(1) var<storage, read> sb_gate: array<f32>;
@group(0) @binding(2) var<storage, read> sb_up: array<f32>;
@group(0) @binding(3) var<storage, read> sb_dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> sb_dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> sb_dup: array<f32>;

@compute @workgroup_size(256)
fn swiglu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element(gid, nwg);
  if (i >= sp.rows * sp.inter) { return; }
  let d = swiglu_grads(sb_gate[i], sb_up[i], sb_dout[i]);
  sb_dgate[i] = d.x;
  sb_dup[i] = d.y;
}

// swiglu_fused_forward
@group(0) @binding(1) var<storage, read> sff_gate_up: array<f32>;
@group(0) @binding(2) var<storage, read_write> sff_out: array<f32>;

@compute @workgroup_size(256)
fn swiglu_fused_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element(gid, nwg);
  if (i >= sp.rows * sp.inter) { return; }
  let o = fused_offset(i);
  let g = sff_gate_up[o];
  sff_out[i] = g * sigmoid(g) * sff_gate_up[o + sp.inter];
}

// swiglu_fused_backward
@group(0) @binding(1) var<storage, read> sfb_gate_up: array<f32>;
@group(0) @binding(2) var<storage, read> sfb_dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> sfb_dgate_up: array<f32>;

@compute @workgroup_size(256)
fn swiglu_fused_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element(gid, nwg);
  if (i >= sp.rows * sp.inter) { return; }
  let o = fused_offset(i);
  let d = swiglu_grads(sfb_gate_up[o], sfb_gate_up[o + sp.inter], sfb_dout[i]);
  sfb_dgate_up[o] = d.x;
  sfb_dgate_up[o + sp.inter] = d.y;
}
