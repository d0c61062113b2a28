// Workgroup tree reductions over 256 lanes, for @workgroup_size(256) kernels. Functions only:
// modules that need them concatenate this file in front of theirs (like random.wgsl).
// Fixed pairing order, so results do not depend on scheduling. Every lane gets the result; the
// trailing barrier lets the caller reduce again right away.

const LANES: u32 = 256u;
var<workgroup> lane_values: array<f32, 256>;

fn workgroup_sum(lane: u32, value: f32) -> f32 {
  lane_values[lane] = value;
  workgroupBarrier();
  for (var width = LANES / 2u; width > 0u; width /= 2u) {
    if (lane < width) { lane_values[lane] += lane_values[lane + width]; }
    workgroupBarrier();
  }
  let total = lane_values[0];
  workgroupBarrier();
  return total;
}

fn workgroup_max(lane: u32, value: f32) -> f32 {
  lane_values[lane] = value;
  workgroupBarrier();
  for (var width = LANES / 2u; width > 0u; width /= 2u) {
    if (lane < width) { lane_values[lane] = max(lane_values[lane], lane_values[lane + width]); }
    workgroupBarrier();
  }
  let total = lane_values[0];
  workgroupBarrier();
  return total;
}
