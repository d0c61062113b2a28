// Rotary position embedding, Hugging Face Llama's rotate_half convention: in each head of D values,
// element i < D/2 pairs with element i + D/2 and the pair turns by the angle pos·inv_freq[i]:
//   y_i = x_i cos - x_{i+D/2} sin,   y_{i+D/2} = x_{i+D/2} cos + x_i sin.
// The backward is the inverse rotation (the transpose): the same with sin negated.
// x, y: [rows, heads * D] (a token per row); positions: u32 [rows]; table: [table_rows, D], row p
// holding cos then sin of p·inv_freq (rope-frequencies.ts). One invocation per pair.

struct RopeParams { rows: u32, heads: u32, half: u32, table_rows: u32 }

@group(0) @binding(0) var<uniform> rp: RopeParams;
@group(0) @binding(1) var<storage, read> rope_in: array<f32>;
@group(0) @binding(2) var<storage, read> rope_positions: array<u32>;
@group(0) @binding(3) var<storage, read> rope_table: array<f32>;
@group(0) @binding(4) var<storage, read_write> rope_out: array<f32>;

fn rotate(gid: vec3<u32>, nwg: vec3<u32>, sin_sign: f32) {
  let pair = gid.x + gid.y * nwg.x * 256u;
  if (pair >= rp.rows * rp.heads * rp.half) { return; }
  let i = pair % rp.half;
  let head = pair / rp.half; // = row * heads + h
  let row = head / rp.heads;
  let lo = head * 2u * rp.half + i;
  let hi = lo + rp.half;
  // Positions are checked against the table when uploaded (uploadRopePositions); the clamp only keeps reads in range.
  let t = min(rope_positions[row], rp.table_rows - 1u) * 2u * rp.half + i;
  let c = rope_table[t];
  let s = rope_table[t + rp.half] * sin_sign;
  let a = rope_in[lo];
  let b = rope_in[hi];
  rope_out[lo] = a * c - b * s;
  rope_out[hi] = b * c + a * s;
}

@compute @workgroup_size(256)
fn rope_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) { rotate(gid, nwg, 1.0); }

@compute @workgroup_size(256)
fn rope_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) { rotate(gid, nwg, -1.0); }
