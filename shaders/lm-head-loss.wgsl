// Cross-entropy of next-token targets over the vocabulary, one chunk of logits at a time
// (lm-head-loss.ts computes each chunk's logits [rows, chunk] = hidden · head[c0 .. c0+chunk)ᵀ with
// the matmul). Targets: i32 [rows], a vocabulary index or ignore_index (prompt, padding).
//
// Forward: lm_loss_chunk_forward folds a chunk into each row's online log-sum-exp (running max and
// rescaled sum) and picks the target's logit when it falls in the chunk; lm_loss_finish then writes
// lse_r = max + log(sum), the per-token loss lse_r - z_target (0 for ignored rows) and the mean over
// the counted targets. Backward: lm_loss_chunk_grad turns a recomputed chunk of logits, in place,
// into dlogits = (softmax - onehot(target)) / count (0 for ignored rows), which the matmul then
// multiplies into d(hidden). Rows are walked in order by one invocation each: deterministic.

struct LossParams { rows: u32, cols: u32, col_start: u32, first_chunk: u32, ignore_index: i32, inv_count: f32 }

@group(0) @binding(0) var<uniform> lp: LossParams;

// exp(d) for d ≤ 0, exactly 0 below -104 where f32 underflows anyway (platform exp may not).
fn exp_nonpositive(d: f32) -> f32 {
  return select(0.0, exp(d), d > -104.0);
}

// lm_loss_chunk_forward: running [3, rows] = (max, sum of exp(z - max), target logit).
@group(0) @binding(1) var<storage, read> lf_logits: array<f32>;
@group(0) @binding(2) var<storage, read> lf_targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> lf_running: array<f32>;

@compute @workgroup_size(64)
fn lm_loss_chunk_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= lp.rows) { return; }
  let base = r * lp.cols;
  var chunk_max = lf_logits[base];
  for (var j = 1u; j < lp.cols; j++) { chunk_max = max(chunk_max, lf_logits[base + j]); }
  var mx = chunk_max;
  var total = 0.0;
  var target_logit = 0.0;
  if (lp.first_chunk == 0u) {
    mx = max(lf_running[r], chunk_max);
    total = lf_running[lp.rows + r] * exp_nonpositive(lf_running[r] - mx);
    target_logit = lf_running[2u * lp.rows + r];
  }
  for (var j = 0u; j < lp.cols; j++) { total += exp_nonpositive(lf_logits[base + j] - mx); }
  let t = lf_targets[r];
  if (t != lp.ignore_index && u32(t) >= lp.col_start && u32(t) < lp.col_start + lp.cols) {
    target_logit = lf_logits[base + u32(t) - lp.col_start];
  }
  lf_running[r] = mx;
  lf_running[lp.rows + r] = total;
  lf_running[2u * lp.rows + r] = target_logit;
}

// lm_loss_finish: one invocation; lse and token_loss [rows], loss [1].
@group(0) @binding(1) var<storage, read> lx_running: array<f32>;
@group(0) @binding(2) var<storage, read> lx_targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> lx_lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> lx_token_loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> lx_loss: array<f32>;

@compute @workgroup_size(1)
fn lm_loss_finish() {
  var sum = 0.0;
  for (var r = 0u; r < lp.rows; r++) {
    let lse = lx_running[r] + log(lx_running[lp.rows + r]);
    lx_lse[r] = lse;
    var token_loss = 0.0;
    if (lx_targets[r] != lp.ignore_index) { token_loss = lse - lx_running[2u * lp.rows + r]; }
    lx_token_loss[r] = token_loss;
    sum += token_loss;
  }
  lx_loss[0] = sum * lp.inv_count;
}

// lm_loss_chunk_grad: logits [rows, cols] → dlogits in place, one invocation per element.
@group(0) @binding(1) var<storage, read> lg_lse: array<f32>;
@group(0) @binding(2) var<storage, read> lg_targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> lg_logits: array<f32>;

@compute @workgroup_size(256)
fn lm_loss_chunk_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= lp.rows * lp.cols) { return; }
  let r = e / lp.cols;
  let t = lg_targets[r];
  if (t == lp.ignore_index) {
    lg_logits[e] = 0.0;
    return;
  }
  let onehot = select(0.0, 1.0, u32(t) == lp.col_start + e % lp.cols);
  lg_logits[e] = (exp_nonpositive(lg_logits[e] - lg_lse[r]) - onehot) * lp.inv_count;
}
