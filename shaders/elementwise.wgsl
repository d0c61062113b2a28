// Elementwise arithmetic on f32 tensors. One thread per element, launched folded over a 2-D grid:
// i = gid.x + gid.y * num_workgroups.x * 256.

struct ElementwiseParams { n: u32 }

@group(0) @binding(0) var<uniform> ew: ElementwiseParams;

fn element_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// add: out = a + b
@group(0) @binding(1) var<storage, read> add_a: array<f32>;
@group(0) @binding(2) var<storage, read> add_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> add_out: array<f32>;

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element_index(gid, nwg);
  if (i >= ew.n) { return; }
  add_out[i] = add_a[i] + add_b[i];
}

// add_in_place: acc = acc + other (a buffer cannot be bound read-only and writable at once)
@group(0) @binding(1) var<storage, read_write> addip_acc: array<f32>;
@group(0) @binding(2) var<storage, read> addip_other: array<f32>;

@compute @workgroup_size(256)
fn add_in_place(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = element_index(gid, nwg);
  if (i >= ew.n) { return; }
  addip_acc[i] = addip_acc[i] + addip_other[i];
}
