// Row reductions shared by the row-wise kernels (prepended to layernorm.wgsl and l2norm.wgsl).
//
// A row kernel gives each row ROW_LANES invocations and each workgroup ROWS_PER_WG rows, folded
// over a 2-D grid: invocation `lid` of workgroup (wid.x + wid.y * nwg.x) serves lane lid % ROW_LANES
// of row (wid.x + wid.y * nwg.x) * ROWS_PER_WG + lid / ROW_LANES. A row's lanes reduce in shared
// memory in a fixed tree order, so results are deterministic. Few lanes per row because barriers
// dominate on CPU-emulated GPUs (SwiftShader: 4 lanes x 16 rows ran ~40x faster than 128 lanes x
// 1 row), while on real GPUs a row kernel is bandwidth-bound either way. Lanes of rows past the end
// must still reach every barrier (loop over nothing, write nothing).

const ROW_LANES = 4u;
const ROWS_PER_WG = 16u;

var<workgroup> row_partials: array<f32, ROW_LANES * ROWS_PER_WG>;

struct RowSlot { row: u32, lane: u32, slot: u32 }

fn row_slot(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> RowSlot {
  return RowSlot((wid.x + wid.y * nwg.x) * ROWS_PER_WG + lid / ROW_LANES, lid % ROW_LANES, lid);
}

// Sum of `value` over the lanes of one row; every lane gets the total. Call in uniform control flow.
fn row_sum(at: RowSlot, value: f32) -> f32 {
  row_partials[at.slot] = value;
  workgroupBarrier();
  for (var stride = ROW_LANES / 2u; stride > 0u; stride = stride / 2u) {
    if (at.lane < stride) { row_partials[at.slot] = row_partials[at.slot] + row_partials[at.slot + stride]; }
    workgroupBarrier();
  }
  let total = row_partials[at.slot - at.lane];
  workgroupBarrier(); // every lane has read the total before the next call overwrites it
  return total;
}
