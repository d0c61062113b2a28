// LayerNorm over rows of length H: y = (x - mean) * rstd * gamma + beta, rstd = 1/sqrt(var + eps).
// Needs row-reduce.wgsl in front (row_slot, row_sum). Mean and variance are two passes over the row
// (no E[x^2] - E[x]^2 cancellation).
// gamma and beta are bound as u32 words: f32 bits, or with PARAMS_HALF two f16 per word (half.wgsl);
// either way the arithmetic is f32.

struct RowParams { rows: u32, width: u32, eps: f32 }

@group(0) @binding(0) var<uniform> lp: RowParams;

override PARAMS_HALF: bool = false;

// Element j of a gamma or beta vector is in word ln_word(j); ln_param(that word, j) is its value.
fn ln_word(j: u32) -> u32 {
  return select(j, j >> 1u, PARAMS_HALF);
}

fn ln_param(word: u32, j: u32) -> f32 {
  if (PARAMS_HALF) { return unpack2x16float(word)[j & 1u]; }
  return bitcast<f32>(word);
}

// layernorm_forward
@group(0) @binding(1) var<storage, read> lnf_x: array<f32>;
@group(0) @binding(2) var<storage, read> lnf_gamma: array<u32>;
@group(0) @binding(3) var<storage, read> lnf_beta: array<u32>;
@group(0) @binding(4) var<storage, read_write> lnf_y: array<f32>;
@group(0) @binding(5) var<storage, read_write> lnf_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> lnf_rstd: array<f32>;

@compute @workgroup_size(ROW_LANES * ROWS_PER_WG)
fn layernorm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let at = row_slot(wid, nwg, lid);
  let end = select(0u, lp.width, at.row < lp.rows);
  let base = at.row * lp.width;
  let width = f32(lp.width);
  var s = 0.0;
  for (var j = at.lane; j < end; j += ROW_LANES) { s += lnf_x[base + j]; }
  let mean = row_sum(at, s) / width;
  var ss = 0.0;
  for (var j = at.lane; j < end; j += ROW_LANES) {
    let d = lnf_x[base + j] - mean;
    ss += d * d;
  }
  let rstd = inverseSqrt(row_sum(at, ss) / width + lp.eps);
  for (var j = at.lane; j < end; j += ROW_LANES) {
    let gamma = ln_param(lnf_gamma[ln_word(j)], j);
    let beta = ln_param(lnf_beta[ln_word(j)], j);
    lnf_y[base + j] = (lnf_x[base + j] - mean) * rstd * gamma + beta;
  }
  if (at.lane == 0u && at.row < lp.rows) {
    lnf_mean[at.row] = mean;
    lnf_rstd[at.row] = rstd;
  }
}

// layernorm_backward: with g = gamma * dy and xhat = (x - mean) * rstd,
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
@group(0) @binding(1) var<storage, read> lnb_x: array<f32>;
@group(0) @binding(2) var<storage, read> lnb_gamma: array<u32>;
@group(0) @binding(3) var<storage, read> lnb_mean: array<f32>;
@group(0) @binding(4) var<storage, read> lnb_rstd: array<f32>;
@group(0) @binding(5) var<storage, read> lnb_dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> lnb_dx: array<f32>;

@compute @workgroup_size(ROW_LANES * ROWS_PER_WG)
fn layernorm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
  let at = row_slot(wid, nwg, lid);
  let end = select(0u, lp.width, at.row < lp.rows);
  let base = at.row * lp.width;
  let saved = min(at.row, lp.rows - 1u); // lanes past the end read a valid row and use nothing
  let mean = lnb_mean[saved];
  let rstd = lnb_rstd[saved];
  var sg = 0.0;
  var sgx = 0.0;
  for (var j = at.lane; j < end; j += ROW_LANES) {
    let g = ln_param(lnb_gamma[ln_word(j)], j) * lnb_dy[base + j];
    sg += g;
    sgx += g * (lnb_x[base + j] - mean) * rstd;
  }
  let width = f32(lp.width);
  let mean_g = row_sum(at, sg) / width;
  let mean_gx = row_sum(at, sgx) / width;
  for (var j = at.lane; j < end; j += ROW_LANES) {
    let xhat = (lnb_x[base + j] - mean) * rstd;
    let gamma = ln_param(lnb_gamma[ln_word(j)], j);
    lnb_dx[base + j] = rstd * (gamma * lnb_dy[base + j] - mean_g - xhat * mean_gx);
  }
}

// dgamma[j] = sum_r dy[r,j] * xhat[r,j], dbeta[j] = sum_r dy[r,j], without atomics in two stages:
// layernorm_param_grad_partial gives each invocation one column of one chunk of rows (workgroup g:
// columns (g % column_blocks) * PG_COLS.., chunk g / column_blocks, folded like the row kernels) and
// writes the chunk sums to partials [2, chunks, H]; layernorm_param_grad_final adds the chunks of
// each column in order. Neighbouring invocations read neighbouring columns of the same row.

struct ParamGradParams { rows: u32, width: u32, rows_per_chunk: u32, chunks: u32, column_blocks: u32 }

@group(0) @binding(0) var<uniform> pg: ParamGradParams;

const PG_COLS = 64u;

@group(0) @binding(1) var<storage, read> pgp_x: array<f32>;
@group(0) @binding(2) var<storage, read> pgp_mean: array<f32>;
@group(0) @binding(3) var<storage, read> pgp_rstd: array<f32>;
@group(0) @binding(4) var<storage, read> pgp_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> pgp_partials: array<f32>;

@compute @workgroup_size(PG_COLS)
fn layernorm_param_grad_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                @builtin(local_invocation_index) lid: u32) {
  let group = wid.x + wid.y * nwg.x;
  let col = (group % pg.column_blocks) * PG_COLS + lid;
  let chunk = group / pg.column_blocks;
  if (chunk >= pg.chunks || col >= pg.width) { return; }
  let start = chunk * pg.rows_per_chunk;
  let end = min(start + pg.rows_per_chunk, pg.rows);
  var dgamma = 0.0;
  var dbeta = 0.0;
  for (var r = start; r < end; r++) {
    let dy = pgp_dy[r * pg.width + col];
    dgamma += dy * (pgp_x[r * pg.width + col] - pgp_mean[r]) * pgp_rstd[r];
    dbeta += dy;
  }
  pgp_partials[chunk * pg.width + col] = dgamma;
  pgp_partials[(pg.chunks + chunk) * pg.width + col] = dbeta;
}

@group(0) @binding(1) var<storage, read> pgf_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> pgf_dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> pgf_dbeta: array<f32>;

@compute @workgroup_size(PG_COLS)
fn layernorm_param_grad_final(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let col = gid.x + gid.y * nwg.x * PG_COLS;
  if (col >= pg.width) { return; }
  var g = 0.0;
  var b = 0.0;
  for (var c = 0u; c < pg.chunks; c++) {
    g += pgf_partials[c * pg.width + col];
    b += pgf_partials[(pg.chunks + c) * pg.width + col];
  }
  pgf_dgamma[col] = g;
  pgf_dbeta[col] = b;
}
