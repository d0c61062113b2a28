// Matmul variants with 2-D register tiles, for GPUs (src/engine/ops/matmul-variants.ts): the f32
// product of matmul.wgsl and the NF4 product of nf4.wgsl, with the same uniform block, epilogue
// (mm_write) and overrides, concatenated after both files.
//
// A workgroup of RT_LANES_N × RT_LANES_M invocations computes an RT_BM × RT_BN output tile; the
// invocation at (x, y) keeps RT_ROWS × RT_COLS accumulators for rows y + i·RT_LANES_M and columns
// x + j·RT_LANES_N, so neighbouring invocations store neighbouring columns. K is walked RT_TILE_K
// at a time: both operand tiles are staged in workgroup memory by all invocations together, each
// load reading RT_VEC consecutive elements along the operand's contiguous dimension (one vec4 when
// RT_VEC is 4), consecutive invocations reading consecutive addresses. Elements past M, N or K
// stage as zeros, so any shape works.
//
// The launcher prepends a header defining RT_LANES_N, RT_LANES_M, RT_ROWS, RT_COLS (a multiple of
// 4), RT_TILE_K (a multiple of 8), RT_VEC (1 or 4), the staged type RtT (f32, or f16 with
// `enable f16`: operands rounded to f16, products accumulated in f32), and the operand bindings
// rt_a (1) and rt_b (2) read through rt_a_group / rt_b_group (RT_VEC elements from a flat index,
// as a vec4 whose unused lanes are zero), and rt_stage_b_operand (below).

const RT_LANES = RT_LANES_N * RT_LANES_M;
const RT_BM = RT_LANES_M * RT_ROWS;
const RT_BN = RT_LANES_N * RT_COLS;
const RT_QUADS = RT_COLS / 4u;

var<workgroup> rt_a_tile: array<RtT, RT_TILE_K * RT_BM>; // [k][row]
var<workgroup> rt_b_tile: array<RtT, RT_TILE_K * RT_BN>; // [k][column]

alias RtAcc = array<vec4<f32>, RT_ROWS * RT_QUADS>; // element i·RT_QUADS + q: row i, columns 4q .. 4q + 3

// The output tile of a workgroup, numbered like matmul.wgsl's (n fastest, then m, then batch).
fn rt_tile_origin(wid: vec3<u32>, nwg: vec3<u32>) -> MmTile {
  let linear = wid.x + wid.y * nwg.x;
  let rest = linear / mm.tiles_n;
  return MmTile((rest % mm.tiles_m) * RT_BM, (linear % mm.tiles_n) * RT_BN, rest / mm.tiles_m, rest < mm.tiles_m * mm.batch);
}

// Position (k, row or column) of the first element of staged group g in a [k][inner] tile, whose
// groups are `width` consecutive elements along k (contiguous_k) or along the inner dimension.
fn rt_group_position(g: u32, inner: u32, width: u32, contiguous_k: bool) -> vec2<u32> {
  if (contiguous_k) {
    return vec2<u32>((g % (RT_TILE_K / width)) * width, g / (RT_TILE_K / width)); // (k, row or column)
  }
  return vec2<u32>(g / (inner / width), (g % (inner / width)) * width);
}

// Index in a [k][inner] tile of element e of the group at (k, j).
fn rt_tile_index(p: vec2<u32>, e: u32, inner: u32, contiguous_k: bool) -> u32 {
  return select(p.x * inner + p.y + e, (p.x + e) * inner + p.y, contiguous_k);
}

// Stage op(A)[m0.., k0..]; A is contiguous along k, or along m when TRANS_A. With RT_VEC 4 that
// length is a multiple of 4, so a group lies wholly inside or outside A.
fn rt_stage_a(a_base: u32, m0: u32, k0: u32, lane: u32) {
  for (var g = lane; g < RT_TILE_K * RT_BM / RT_VEC; g += RT_LANES) {
    let p = rt_group_position(g, RT_BM, RT_VEC, !TRANS_A);
    let gk = k0 + p.x;
    let gm = m0 + p.y;
    var v = vec4<f32>();
    if (gm < mm.M && gk < mm.K) {
      v = rt_a_group(a_base + select(gm * mm.K + gk, gk * mm.M + gm, TRANS_A));
    }
    // @unroll
    for (var e = 0u; e < RT_VEC; e++) {
      rt_a_tile[rt_tile_index(p, e, RT_BM, !TRANS_A)] = RtT(v[e]);
    }
  }
}

// Stage op(B)[k0.., n0..]; B is contiguous along k when TRANS_B (B is [N, K]), else along n.
// Kept apart from rt_stage_a, whose loop it mirrors, because what differs cannot be a WGSL
// parameter: the operand is read through its own binding (rt_a_group, rt_b_group), and the tiles
// are module-scope workgroup arrays of different types (RT_BM vs RT_BN elements per k; a pointer
// to workgroup memory as a parameter needs the unrestricted_pointer_parameters extension). One
// function would have to branch between them inside the staging loop; the index math both share
// is in rt_group_position and rt_tile_index.
fn rt_stage_b(b_base: u32, n0: u32, k0: u32, lane: u32) {
  for (var g = lane; g < RT_TILE_K * RT_BN / RT_VEC; g += RT_LANES) {
    let p = rt_group_position(g, RT_BN, RT_VEC, TRANS_B);
    let gk = k0 + p.x;
    let gn = n0 + p.y;
    var v = vec4<f32>();
    if (gn < mm.N && gk < mm.K) {
      v = rt_b_group(b_base + select(gk * mm.N + gn, gn * mm.K + gk, TRANS_B));
    }
    // @unroll
    for (var e = 0u; e < RT_VEC; e++) {
      rt_b_tile[rt_tile_index(p, e, RT_BN, TRANS_B)] = RtT(v[e]);
    }
  }
}

// Stage op(B) = the NF4 weight, decoded. Aligned weights (rows of whole u32 words) decode one word
// per load: 8 consecutive k for Y = X·Wᵀ (TRANS_B, W [N, K]), 8 consecutive n for dX = dY·W.
fn rt_stage_b_nf4(n0: u32, k0: u32, lane: u32) {
  if (NF4_ALIGNED) {
    for (var g = lane; g < RT_TILE_K * RT_BN / 8u; g += RT_LANES) {
      let p = rt_group_position(g, RT_BN, 8u, TRANS_B);
      let gk = k0 + p.x;
      let gn = n0 + p.y;
      var word = 0u;
      var scale = 0.0;
      if (gn < mm.N && gk < mm.K) {
        let f = nf4_flat(gk, gn);
        word = nf4_packed[f >> 3u];
        scale = nf4_block_absmax(f / NF4_BLOCK);
      }
      // @unroll
      for (var e = 0u; e < 8u; e++) {
        rt_b_tile[rt_tile_index(p, e, RT_BN, TRANS_B)] = RtT(NF4_CODE[(word >> nf4_shift(e)) & 15u] * scale);
      }
    }
  } else {
    for (var g = lane; g < RT_TILE_K * RT_BN; g += RT_LANES) {
      let gk = k0 + g / RT_BN;
      let gn = n0 + g % RT_BN;
      var v = 0.0;
      if (gn < mm.N && gk < mm.K) {
        v = nf4_weight(nf4_flat(gk, gn));
      }
      rt_b_tile[g] = RtT(v);
    }
  }
}

// acc += the staged tiles' product (RT_TILE_K steps; zeros were staged past K).
fn rt_multiply_tiles(acc: ptr<function, RtAcc>, lid: vec3<u32>) {
  for (var k = 0u; k < RT_TILE_K; k++) {
    var b: array<vec4<RtT>, RT_QUADS>;
    // @unroll
    for (var q = 0u; q < RT_QUADS; q++) {
      let at = k * RT_BN + lid.x + 4u * q * RT_LANES_N;
      b[q] = vec4<RtT>(rt_b_tile[at], rt_b_tile[at + RT_LANES_N], rt_b_tile[at + 2u * RT_LANES_N], rt_b_tile[at + 3u * RT_LANES_N]);
    }
    // @unroll
    for (var i = 0u; i < RT_ROWS; i++) {
      let a = rt_a_tile[k * RT_BM + lid.y + i * RT_LANES_M];
      // @unroll
      for (var q = 0u; q < RT_QUADS; q++) {
        (*acc)[i * RT_QUADS + q] += vec4<f32>(a * b[q]);
      }
    }
  }
}

// mm_write of the invocation's outputs with rows < M and columns < N.
fn rt_store(out_base: u32, tile: MmTile, lid: vec3<u32>, acc: ptr<function, RtAcc>) {
  // @unroll
  for (var i = 0u; i < RT_ROWS; i++) {
    let gm = tile.m0 + lid.y + i * RT_LANES_M;
    // @unroll
    for (var j = 0u; j < RT_COLS; j++) {
      let gn = tile.n0 + lid.x + j * RT_LANES_N;
      if (gm < mm.M && gn < mm.N) {
        mm_write(out_base + gm * mm.N + gn, gn, (*acc)[i * RT_QUADS + j / 4u][j % 4u]);
      }
    }
  }
}

// The product; op(B) is staged by rt_stage_b_operand, which the header defines as rt_stage_b
// (f32 matmul, bound like matmul_tiled) or rt_stage_b_nf4 (bound like nf4_matmul).
@compute @workgroup_size(RT_LANES_N, RT_LANES_M)
fn matmul_regtile(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let tile = rt_tile_origin(wid, nwg);
  if (!tile.valid) {
    return;
  }
  var acc: RtAcc;
  for (var k0 = 0u; k0 < mm.K; k0 += RT_TILE_K) {
    rt_stage_a(tile.batch * mm.a_batch_stride, tile.m0, k0, lane);
    rt_stage_b_operand(tile.batch * mm.b_batch_stride, tile.n0, k0, lane);
    workgroupBarrier();
    rt_multiply_tiles(&acc, lid);
    workgroupBarrier();
  }
  rt_store(tile.batch * mm.M * mm.N, tile, lid, &acc);
}
