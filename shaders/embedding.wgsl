// BERT input embeddings: out[b, t] = word[input_ids[b, t]] + token_type[token_type_ids[b, t]] + position[t],
// added in that order (as Hugging Face BERT does: inputs_embeds + token_type, then += position).
// One invocation per output element, folded over a 2-D grid. Ids past the end of their table are
// clamped to its last row, so a bad id can never read out of bounds.
//
// The word table may be split into row blocks that each fit one storage binding: one dispatch per
// block, binding rows first_row.. first_row + block_rows - 1; each element is written by the dispatch
// whose block holds its word, so the result does not depend on the split.
// The _half entry point reads the three tables as f16 packed two per u32 (half.wgsl) and adds in f32.

struct EmbeddingParams { tokens: u32, seq: u32, hidden: u32, vocab: u32, type_vocab: u32, first_row: u32, block_rows: u32 }

@group(0) @binding(0) var<uniform> ep: EmbeddingParams;

struct EmbeddingSlot { i: u32, word_at: u32, type_at: u32, position_at: u32, valid: bool }

// Where output element i reads its three rows (word_at relative to the bound block); valid only in
// the dispatch whose block holds the word.
fn embedding_slot(gid: vec3<u32>, nwg: vec3<u32>, ids: u32, type_ids: u32) -> EmbeddingSlot {
  var s: EmbeddingSlot;
  s.i = gid.x + gid.y * nwg.x * 256u;
  let token = s.i / ep.hidden;
  let d = s.i % ep.hidden;
  let word = min(ids, ep.vocab - 1u);
  s.valid = s.i < ep.tokens * ep.hidden && word >= ep.first_row && word - ep.first_row < ep.block_rows;
  s.word_at = (word - ep.first_row) * ep.hidden + d;
  s.type_at = min(type_ids, ep.type_vocab - 1u) * ep.hidden + d;
  s.position_at = (token % ep.seq) * ep.hidden + d;
  return s;
}

fn embedding_token(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return min((gid.x + gid.y * nwg.x * 256u) / ep.hidden, ep.tokens - 1u);
}

@group(0) @binding(1) var<storage, read> input_ids: array<u32>;
@group(0) @binding(2) var<storage, read> token_type_ids: array<u32>;
@group(0) @binding(3) var<storage, read> word_table: array<f32>;
@group(0) @binding(4) var<storage, read> position_table: array<f32>;
@group(0) @binding(5) var<storage, read> type_table: array<f32>;
@group(0) @binding(6) var<storage, read_write> embedded: array<f32>;

@compute @workgroup_size(256)
fn embedding_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let token = embedding_token(gid, nwg);
  let s = embedding_slot(gid, nwg, input_ids[token], token_type_ids[token]);
  if (!s.valid) { return; }
  embedded[s.i] = (word_table[s.word_at] + type_table[s.type_at]) + position_table[s.position_at];
}

@group(0) @binding(1) var<storage, read> eh_input_ids: array<u32>;
@group(0) @binding(2) var<storage, read> eh_token_type_ids: array<u32>;
@group(0) @binding(3) var<storage, read> eh_word_table: array<u32>;
@group(0) @binding(4) var<storage, read> eh_position_table: array<u32>;
@group(0) @binding(5) var<storage, read> eh_type_table: array<u32>;
@group(0) @binding(6) var<storage, read_write> eh_embedded: array<f32>;

// Element e of a packed f16 table, given the word that holds it.
fn half_at(word: u32, e: u32) -> f32 {
  return unpack2x16float(word)[e & 1u];
}

@compute @workgroup_size(256)
fn embedding_forward_half(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let token = embedding_token(gid, nwg);
  let s = embedding_slot(gid, nwg, eh_input_ids[token], eh_token_type_ids[token]);
  if (!s.valid) { return; }
  let word = half_at(eh_word_table[s.word_at >> 1u], s.word_at);
  let kind = half_at(eh_type_table[s.type_at >> 1u], s.type_at);
  let position = half_at(eh_position_table[s.position_at >> 1u], s.position_at);
  eh_embedded[s.i] = (word + kind) + position;
}
