// Half-precision storage: f32 values packed two per u32 with WGSL's core pack2x16float (element 2k in
// the low 16 bits, 2k + 1 in the high), so no shader-f16 device feature is needed. Only storage is
// half: kernels unpack to f32 and compute in f32. An odd count leaves the last word's high half 0.
// Values outside f16's finite range (±65504) pack to an indeterminate value (WGSL), so callers keep
// them in f32. One invocation per output word (pack) or element (unpack), folded over a 2-D grid.

// first: the unpack's first half in packed (a row block's chunk); the pack ignores it.
struct HalfParams { n: u32, first: u32 }

@group(0) @binding(0) var<uniform> hp: HalfParams;

// half_pack: packed[k] = (x[2k], x[2k + 1]) for k < ceil(n / 2)
@group(0) @binding(1) var<storage, read> hpk_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> hpk_packed: array<u32>;

@compute @workgroup_size(256)
fn half_pack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = gid.x + gid.y * nwg.x * 256u;
  let first = 2u * k;
  if (first >= hp.n) { return; }
  let second = select(0.0, hpk_x[min(first + 1u, hp.n - 1u)], first + 1u < hp.n);
  hpk_packed[k] = pack2x16float(vec2<f32>(hpk_x[first], second));
}

// half_unpack: y[i] = half first + i of packed, for i < n
@group(0) @binding(1) var<storage, read> hup_packed: array<u32>;
@group(0) @binding(2) var<storage, read_write> hup_y: array<f32>;

@compute @workgroup_size(256)
fn half_unpack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= hp.n) { return; }
  let h = hp.first + i;
  hup_y[i] = unpack2x16float(hup_packed[h >> 1u])[h & 1u];
}
