// Row reductions with subgroup operations: the variant of row-reduce.wgsl (same row_slot / row_sum
// interface) for devices with the `subgroups` feature; it goes first in a module for the `enable`.
//
// One row per workgroup of ROW_LANES invocations. subgroupAdd sums a subgroup in registers; the
// first active invocation of each subgroup (subgroupElect) leaves that partial in its own slot and
// every lane adds the ROW_LANES slots in index order (the others hold 0). Two barriers per sum
// instead of the tree's 2 + log2(lanes), and nothing assumes how invocations map to subgroups.
enable subgroups;

const ROW_LANES = 64u;
const ROWS_PER_WG = 1u;

var<workgroup> row_partials: array<f32, ROW_LANES>;

struct RowSlot { row: u32, lane: u32, slot: u32 }

fn row_slot(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> RowSlot {
  return RowSlot(wid.x + wid.y * nwg.x, lid, lid);
}

// Sum of `value` over the lanes of one row; every lane gets the total. Call in uniform control flow.
fn row_sum(at: RowSlot, value: f32) -> f32 {
  let partial = subgroupAdd(value);
  row_partials[at.slot] = select(0.0, partial, subgroupElect());
  workgroupBarrier();
  var total = 0.0;
  for (var i = 0u; i < ROW_LANES; i++) { total += row_partials[i]; }
  workgroupBarrier(); // every lane has read the slots before the next call overwrites them
  return total;
}
