// NF4 4-bit weights in the bitsandbytes layout (see src/engine/ops/nf4.ref.ts for the format):
// quantise, double-quantise absmax, dequantise, and matmuls that decode the weight tile by tile
// inside the tiled matmul of matmul.wgsl (concatenated before this file), never materialising it.
//
// Packed data: element f is nibble (f mod 8) of u32 word f/8: byte (f/2) mod 4 of the word
// (little-endian), high nibble for even f. absmax is one f32 per 64 elements, or with double
// quantisation one 8-bit dynamic-map code per 64 elements (4 per u32 word) plus an f32 scale per
// 256 codes and the offset; the absmax binding is read as u32 words either way.

override DOUBLE_QUANT: bool = false;
// The weight's rows are whole u32 words (its column count is a multiple of 8).
override NF4_ALIGNED: bool = false;

const NF4_BLOCK = 64u;
const ABSMAX_BLOCK = 256u;

const NF4_CODE = array<f32, 16>(
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
);

// dQuantizeNF4's thresholds as float32 bits (a WGSL decimal literal would be rounded twice).
const NF4_THRESHOLD_BITS = array<u32, 15>(
  0xbf591cd9u, 0xbf1c5270u, 0xbeeb8480u, 0xbeadea76u, 0xbe703cecu, 0xbe0d38bcu, 0xbd3a7871u, 0x3d22faffu,
  0x3df64863u, 0x3e5067e0u, 0x3e9582d4u, 0x3ec753f9u, 0x3f006d03u, 0x3f248dafu, 0x3f5c89d9u,
);

// Number of thresholds t with x > t, by binary search; x = NaN compares false everywhere and gets 0.
fn nf4_code(x: f32) -> u32 {
  var c = select(0u, 8u, x > bitcast<f32>(NF4_THRESHOLD_BITS[7]));
  c += select(0u, 4u, x > bitcast<f32>(NF4_THRESHOLD_BITS[c + 3u]));
  c += select(0u, 2u, x > bitcast<f32>(NF4_THRESHOLD_BITS[c + 1u]));
  c += select(0u, 1u, x > bitcast<f32>(NF4_THRESHOLD_BITS[c]));
  return c;
}

// Bit position of element f's nibble inside its u32 word.
fn nf4_shift(f: u32) -> u32 {
  return ((f >> 1u) & 3u) * 8u + select(4u, 0u, (f & 1u) == 1u);
}

// ---------------------------------------------------------------- quantise

struct QuantizeParams {
  n: u32,          // values to quantise
  blocks: u32,     // ceil(n / block)
  words: u32,      // output words
  row_stride: u32, // invocations per grid row (folded launch)
  offset: f32,     // double quantisation: subtracted before coding
}

@group(0) @binding(0) var<uniform> qp: QuantizeParams;

// nf4_quantize: one invocation per 64-block. bitsandbytes' arithmetic: x = w · (1/absmax) in f32.
@group(0) @binding(1) var<storage, read> q_weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> q_packed: array<u32>;
@group(0) @binding(3) var<storage, read_write> q_absmax: array<f32>;

@compute @workgroup_size(64)
fn nf4_quantize(@builtin(global_invocation_id) gid: vec3<u32>) {
  let block = gid.x + gid.y * qp.row_stride;
  if (block >= qp.blocks) {
    return;
  }
  let start = block * NF4_BLOCK;
  let end = min(start + NF4_BLOCK, qp.n);
  var amax = 0.0;
  for (var i = start; i < end; i++) {
    amax = max(amax, abs(q_weight[i]));
  }
  q_absmax[block] = amax;
  let r = 1.0 / amax;
  for (var word = block * 8u; word < min(block * 8u + 8u, qp.words); word++) {
    var bits = 0u;
    for (var j = 0u; j < 8u; j++) {
      let f = word * 8u + j;
      let w = select(0.0, q_weight[min(f, qp.n - 1u)], f < qp.n); // padding codes a zero
      // An all-zero block: bitsandbytes computes 0·(1/0) = NaN, which codes to 0; WGSL promises no
      // IEEE inf/NaN, so the case is explicit.
      let code = select(nf4_code(w * r), 0u, amax == 0.0);
      bits |= code << nf4_shift(f);
    }
    q_packed[word] = bits;
  }
}

// nf4_absmax_mean: one workgroup; out[0] = mean of absmax[0..n) (fixed summation order).
@group(0) @binding(1) var<storage, read> mean_values: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean_out: array<f32>;

var<workgroup> mean_partial: array<f32, 256>;

@compute @workgroup_size(256)
fn nf4_absmax_mean(@builtin(local_invocation_index) tid: u32) {
  var s = 0.0;
  for (var i = tid; i < qp.n; i += 256u) {
    s += mean_values[i];
  }
  mean_partial[tid] = s;
  for (var width = 128u; width > 0u; width >>= 1u) {
    workgroupBarrier();
    if (tid < width) {
      mean_partial[tid] += mean_partial[tid + width];
    }
  }
  if (tid == 0u) {
    mean_out[0] = mean_partial[0] / f32(qp.n);
  }
}

// bitsandbytes' dQuantize<0>: 7-step binary search of the sorted map from pivot 127, then a float32
// midpoint comparison with the last bracket. NaN ends at pivot 0.
fn dynamic_code(x: f32) -> u32 {
  var pivot = 127u;
  var upper_pivot = 255u;
  var lower_pivot = 0u;
  var lower = -1.0;
  var upper = 1.0;
  var val = dq_map[pivot];
  for (var step = 64u; step > 0u; step >>= 1u) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += step;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= step;
    }
    val = dq_map[pivot];
  }
  if (upper_pivot == 255u) {
    upper = dq_map[255];
  }
  if (lower_pivot == 0u) {
    lower = dq_map[0];
  }
  if (x > val) {
    return select(pivot, upper_pivot, x > (upper + val) * 0.5);
  }
  return select(pivot, lower_pivot, x < (lower + val) * 0.5);
}

// nf4_double_quantize: one invocation per 256 absmax values: scale = max |absmax − offset|, codes of
// (absmax − offset) · (1/scale) packed 4 per word.
@group(0) @binding(1) var<storage, read> dq_absmax_in: array<f32>;
@group(0) @binding(2) var<storage, read> dq_map: array<f32>;
@group(0) @binding(3) var<storage, read_write> dq_codes: array<u32>;
@group(0) @binding(4) var<storage, read_write> dq_scale: array<f32>;

@compute @workgroup_size(64)
fn nf4_double_quantize(@builtin(global_invocation_id) gid: vec3<u32>) {
  let block = gid.x + gid.y * qp.row_stride;
  if (block >= qp.blocks) {
    return;
  }
  let start = block * ABSMAX_BLOCK;
  let end = min(start + ABSMAX_BLOCK, qp.n);
  var amax = 0.0;
  for (var i = start; i < end; i++) {
    amax = max(amax, abs(dq_absmax_in[i] - qp.offset));
  }
  dq_scale[block] = amax;
  let r = 1.0 / amax;
  for (var word = block * 64u; word < min(block * 64u + 64u, qp.words); word++) {
    var bits = 0u;
    for (var j = 0u; j < 4u; j++) {
      let i = word * 4u + j;
      let v = select(0.0, dq_absmax_in[min(i, qp.n - 1u)] - qp.offset, i < qp.n);
      // scale 0 (every absmax equal to the offset): NaN in bitsandbytes, code 0.
      let code = select(dynamic_code(v * r), 0u, amax == 0.0);
      bits |= code << (8u * j);
    }
    dq_codes[word] = bits;
  }
}

// ---------------------------------------------------------------- dequantise and matmul

// Bindings of the decoding kernels, after matmul.wgsl's mm_a (1), mm_out (3) and mm_bias (4).
@group(0) @binding(2) var<storage, read> nf4_packed: array<u32>;
@group(0) @binding(5) var<storage, read> nf4_absmax: array<u32>; // f32 bits, or 4 dynamic-map codes per word
@group(0) @binding(6) var<storage, read> nf4_absmax_scale: array<f32>;
@group(0) @binding(7) var<storage, read> nf4_map: array<f32>;

// absmax of 64-block `block`: stored, or map[code] · scale + offset (bitsandbytes' f32 arithmetic).
fn nf4_block_absmax(block: u32) -> f32 {
  if (mm_option(DOUBLE_QUANT, 64u)) {
    let code = (nf4_absmax[block >> 2u] >> ((block & 3u) * 8u)) & 255u;
    return nf4_map[code] * nf4_absmax_scale[block / ABSMAX_BLOCK] + mm.absmax_offset;
  }
  return bitcast<f32>(nf4_absmax[block]);
}

// Dequantised element f of the flattened weight.
fn nf4_weight(f: u32) -> f32 {
  let code = (nf4_packed[f >> 3u] >> nf4_shift(f)) & 15u;
  return NF4_CODE[code] * nf4_block_absmax(f / NF4_BLOCK);
}

// nf4_dequantize: one invocation per packed word; out[f] for its 8 elements (mm.N = element count).
@compute @workgroup_size(64)
fn nf4_dequantize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let word = gid.x + gid.y * nwg.x * 64u;
  for (var j = 0u; j < 8u; j++) {
    let f = word * 8u + j;
    if (f < mm.N) {
      mm_out[f] = nf4_weight(f);
    }
  }
}

// Flat index into W of op(W)[k][n]: for Y = X·Wᵀ (TRANS_B) W is [N, K]; for dX = dY·W it is [K, N].
fn nf4_flat(k: u32, n: u32) -> u32 {
  return select(k * mm.N + n, n * mm.K + k, TRANS_B);
}

// The tiled matmul of matmul.wgsl with op(B) = the NF4 weight, decoded as it is read. Aligned
// weights (rows of whole u32 words) decode 8 values per word load: for Y = X·Wᵀ an invocation's
// column is a row of W, whose word covers 8 consecutive k; for dX = dY·W the invocation's 8
// adjacent columns (COLS_CONTIGUOUS) share one word per k.
@compute @workgroup_size(MM_LANES)
fn nf4_matmul(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let tile = mm_tile_origin(wid, nwg);
  if (!tile.valid) {
    return;
  }
  // Columns past N are clamped: their loads stay in bounds and their results are never stored.
  var cols: array<u32, 8>;
  // @unroll
  for (var c = 0u; c < 8u; c++) {
    cols[c] = min(mm_column(tile.n0, lane, c), mm.N - 1u);
  }
  // dX = dY·W, aligned: the first of the invocation's 8 columns (all in range or all past N).
  let first = min(mm_column(tile.n0, lane, 0u), mm.N - 8u);
  var acc: MmAcc;
  for (var k0 = 0u; k0 < mm.K; k0 += MM_TILE_K) {
    mm_stage_a(0u, tile.m0, k0, lane);
    workgroupBarrier();
    if (mm_option(NF4_ALIGNED, 128u) && k0 + MM_TILE_K <= mm.K) {
      // @unroll
      for (var g = 0u; g < 2u; g++) {
        // Eight words: for Y = X·Wᵀ word x holds column x at k0 + 8g .. k0 + 8g + 7; for dX = dY·W
        // it holds the 8 columns at k = k0 + 8g + x.
        var words: array<u32, 8>;
        var scales: array<f32, 8>;
        // @unroll
        for (var x = 0u; x < 8u; x++) {
          let f = select(nf4_flat(k0 + 8u * g + x, first), nf4_flat(k0 + 8u * g, cols[x]), TRANS_B);
          words[x] = nf4_packed[f / 8u];
          scales[x] = nf4_block_absmax(f / NF4_BLOCK);
        }
        // @unroll
        for (var j = 0u; j < 8u; j++) {
          var b: array<f32, 8>;
          // @unroll
          for (var c = 0u; c < 8u; c++) {
            let x = select(j, c, TRANS_B); // the word
            let e = select(c, j, TRANS_B); // its element
            b[c] = NF4_CODE[(words[x] >> nf4_shift(e)) & 15u] * scales[x];
          }
          mm_fma_step(&acc, 8u * g + j, vec4<f32>(b[0], b[1], b[2], b[3]), vec4<f32>(b[4], b[5], b[6], b[7]));
        }
      }
    } else {
      for (var k = 0u; k < min(MM_TILE_K, mm.K - k0); k++) {
        var b: array<f32, 8>;
        // @unroll
        for (var c = 0u; c < 8u; c++) {
          b[c] = nf4_weight(nf4_flat(k0 + k, cols[c]));
        }
        mm_fma_step(&acc, k, vec4<f32>(b[0], b[1], b[2], b[3]), vec4<f32>(b[4], b[5], b[6], b[7]));
      }
    }
    workgroupBarrier();
  }
  mm_store(0u, tile, lane, &acc);
}
