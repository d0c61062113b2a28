/** Float64 reference for embedding.wgsl (ids past the end of a table clamped to its last row, as on the GPU). */

export interface EmbeddingTables {
  word: ArrayLike<number>;
  position: ArrayLike<number>;
  tokenType: ArrayLike<number>;
}

export function embeddingForwardRef(
  inputIds: ArrayLike<number>,
  tokenTypeIds: ArrayLike<number>,
  tables: EmbeddingTables,
  seq: number,
  hidden: number,
): Float64Array {
  const vocab = tables.word.length / hidden;
  const typeVocab = tables.tokenType.length / hidden;
  const out = new Float64Array(inputIds.length * hidden);
  for (let token = 0; token < inputIds.length; token++) {
    const word = Math.min(inputIds[token], vocab - 1);
    const kind = Math.min(tokenTypeIds[token], typeVocab - 1);
    const position = token % seq;
    for (let d = 0; d < hidden; d++) {
      out[token * hidden + d] = tables.word[word * hidden + d] + tables.tokenType[kind * hidden + d] + tables.position[position * hidden + d];
    }
  }
  return out;
}
