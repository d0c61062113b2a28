// Workgroup reductions over 256 lanes with subgroup operations: the variant of reduce.wgsl (same
// functions) for devices with the `subgroups` feature; it goes first in a module for the `enable`.
// Each subgroup reduces in registers (subgroupAdd / subgroupMax) and leaves its result in
// lane_values; every lane then combines the 256 slots in index order, so the result does not
// depend on scheduling or on how invocations map to subgroups. The trailing barrier lets the
// caller reduce again right away.
enable subgroups;

const LANES: u32 = 256u;
var<workgroup> lane_values: array<f32, 256>;

fn workgroup_sum(lane: u32, value: f32) -> f32 {
  let partial = subgroupAdd(value);
  // One slot per subgroup holds its sum, the others 0.
  lane_values[lane] = select(0.0, partial, subgroupElect());
  workgroupBarrier();
  var total = 0.0;
  for (var i = 0u; i < LANES; i++) { total += lane_values[i]; }
  workgroupBarrier();
  return total;
}

fn workgroup_max(lane: u32, value: f32) -> f32 {
  // Every lane of a subgroup holds the subgroup's max, so the max over all slots is the answer.
  lane_values[lane] = subgroupMax(value);
  workgroupBarrier();
  var total = lane_values[0];
  for (var i = 1u; i < LANES; i++) { total = max(total, lane_values[i]); }
  workgroupBarrier();
  return total;
}
