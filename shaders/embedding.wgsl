// BERT input embeddings: out[b, t] = word[input_ids[b, t]] + token_type[token_type_ids[b, t]] + position[t],
// added in that order (as Hugging Face BERT does: inputs_embeds + token_type, then += position).
// One invocation per output element, folded over a 2-D grid. Ids past the end of their table are
// clamped to its last row, so a bad id can never read out of bounds.

struct EmbeddingParams { tokens: u32, seq: u32, hidden: u32, vocab: u32, type_vocab: u32 }

@group(0) @binding(0) var<uniform> ep: EmbeddingParams;
@group(0) @binding(1) var<storage, read> input_ids: array<u32>;
@group(0) @binding(2) var<storage, read> token_type_ids: array<u32>;
@group(0) @binding(3) var<storage, read> word_table: array<f32>;
@group(0) @binding(4) var<storage, read> position_table: array<f32>;
@group(0) @binding(5) var<storage, read> type_table: array<f32>;
@group(0) @binding(6) var<storage, read_write> embedded: array<f32>;

@compute @workgroup_size(256)
fn embedding_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= ep.tokens * ep.hidden) { return; }
  let token = i / ep.hidden;
  let d = i % ep.hidden;
  let word = min(input_ids[token], ep.vocab - 1u);
  let kind = min(token_type_ids[token], ep.type_vocab - 1u);
  let position = token % ep.seq;
  embedded[i] = (word_table[word * ep.hidden + d] + type_table[kind * ep.hidden + d]) + position_table[position * ep.hidden + d];
}
