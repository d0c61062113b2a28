import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { Rng } from '../../src/data/rng.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { embeddingForward } from '../../src/engine/ops/embedding.ts';
import { embeddingForwardRef } from '../../src/engine/ops/embedding.ref.ts';
import { packHalfRef, unpackHalfRef } from '../../src/engine/ops/half.ref.ts';
import { type StoragePrecision, releaseStored, storeMatrix } from '../../src/engine/stored.ts';
import { gpuEngine, testEngine } from '../helpers/gpu.ts';
import { type TorchEmbeddingCase, layerOpsFixture } from '../helpers/layer-ops-fixture.ts';
import { expectBitIdentical, expectClose, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

type Sizes = Pick<TorchEmbeddingCase, 'batch' | 'seq' | 'hidden' | 'vocab' | 'positions' | 'typeVocab'>;

/** Random tables and ids; `idRange` > vocab produces out-of-range ids. */
function inputs(s: Sizes, seed: number, idRange = s.vocab, typeRange = s.typeVocab) {
  const rng = new Rng(seed);
  const tokens = s.batch * s.seq;
  return {
    inputIds: Uint32Array.from({ length: tokens }, () => rng.int(idRange)),
    tokenTypeIds: Uint32Array.from({ length: tokens }, () => rng.int(typeRange)),
    tables: {
      word: randomArray(seed + 1, s.vocab * s.hidden),
      position: randomArray(seed + 2, s.positions * s.hidden),
      tokenType: randomArray(seed + 3, s.typeVocab * s.hidden),
    },
  };
}

async function runEmbedding(engine: Engine, s: Sizes, data: ReturnType<typeof inputs>): Promise<Float32Array> {
  const ids = engine.upload(data.inputIds, [s.batch, s.seq]);
  const types = engine.upload(data.tokenTypeIds, [s.batch, s.seq]);
  const word = engine.upload(data.tables.word, [s.vocab, s.hidden]);
  const position = engine.upload(data.tables.position, [s.positions, s.hidden]);
  const tokenType = engine.upload(data.tables.tokenType, [s.typeVocab, s.hidden]);
  const out = engine.alloc([s.batch, s.seq, s.hidden]);
  embeddingForward(engine, ids, types, word, position, tokenType, out);
  const result = await engine.readF32(out);
  engine.release(ids, types, word, position, tokenType, out);
  return result;
}

/** The embedding with the tables stored (f16 or f32, split to the engine's binding limit); returns the word table's block count too. */
async function runStored(engine: Engine, s: Sizes, data: ReturnType<typeof inputs>, precision: StoragePrecision) {
  const ids = engine.upload(data.inputIds, [s.batch, s.seq]);
  const types = engine.upload(data.tokenTypeIds, [s.batch, s.seq]);
  const word = storeMatrix(engine, 'word', data.tables.word, [s.vocab, s.hidden], precision);
  const position = storeMatrix(engine, 'position', data.tables.position, [s.positions, s.hidden], precision);
  const tokenType = storeMatrix(engine, 'tokenType', data.tables.tokenType, [s.typeVocab, s.hidden], precision);
  const out = engine.alloc([s.batch, s.seq, s.hidden]);
  embeddingForward(engine, ids, types, word, position, tokenType, out);
  const result = await engine.readF32(out);
  engine.release(ids, types, out);
  releaseStored(engine, word, position, tokenType);
  return { result, wordBlocks: word.blocks.length };
}

/** The tables rounded to f16, as f32 arrays. */
function halvedTables(data: ReturnType<typeof inputs>): ReturnType<typeof inputs> {
  const halve = (x: Float32Array) => Float32Array.from(unpackHalfRef(packHalfRef(x), x.length));
  const { word, position, tokenType } = data.tables;
  return { ...data, tables: { word: halve(word), position: halve(position), tokenType: halve(tokenType) } };
}

/** The same sum in f32, in Hugging Face BERT's order: (word + token type) + position. */
function huggingFaceOrderF32(s: Sizes, data: ReturnType<typeof inputs>): Float32Array {
  const { word, position, tokenType } = data.tables;
  const out = new Float32Array(s.batch * s.seq * s.hidden);
  for (let token = 0; token < s.batch * s.seq; token++) {
    const w = Math.min(data.inputIds[token], s.vocab - 1);
    const k = Math.min(data.tokenTypeIds[token], s.typeVocab - 1);
    for (let d = 0; d < s.hidden; d++) {
      const wordPlusType = Math.fround(word[w * s.hidden + d] + tokenType[k * s.hidden + d]);
      out[token * s.hidden + d] = Math.fround(wordPlusType + position[(token % s.seq) * s.hidden + d]);
    }
  }
  return out;
}

describe('embedding', () => {
  // Sums of three f32 values of size ~1: 1e-6 covers two roundings; and the GPU adds in Hugging
  // Face's order, so it equals that f32 sum bit for bit.
  it.each([
    { batch: 1, seq: 1, hidden: 1, vocab: 1, positions: 1, typeVocab: 1 },
    { batch: 2, seq: 7, hidden: 72, vocab: 50, positions: 9, typeVocab: 2 },
    { batch: 3, seq: 33, hidden: 5, vocab: 1000, positions: 40, typeVocab: 1 },
    { batch: 5, seq: 7, hidden: 200, vocab: 30, positions: 7, typeVocab: 2 },
  ])('matches the float64 reference and the f32 sum in Hugging Face order, %o', async (s) => {
    const data = inputs(s, s.batch * 100 + s.hidden);
    const got = await runEmbedding(await gpuEngine(), s, data);
    expectClose(got, embeddingForwardRef(data.inputIds, data.tokenTypeIds, data.tables, s.seq, s.hidden), { atol: 1e-6, rtol: 1e-6 }, 'out');
    expectBitIdentical(got, huggingFaceOrderF32(s, data), 'out vs f32 in HF order');
  });

  it.each(layerOpsFixture.embedding)('equals torch BertEmbeddings\' f32 sum bit for bit (committed fixture), $batch x $seq x $hidden', async (c) => {
    const data = {
      inputIds: Uint32Array.from(c.inputIds),
      tokenTypeIds: Uint32Array.from(c.tokenTypeIds),
      tables: { word: Float32Array.from(c.word), position: Float32Array.from(c.position), tokenType: Float32Array.from(c.tokenType) },
    };
    expectBitIdentical(await runEmbedding(await gpuEngine(), c, data), Float32Array.from(c.out), 'out vs torch');
  });

  it('clamps out-of-range ids to the last row of their table', async () => {
    const s = { batch: 2, seq: 6, hidden: 9, vocab: 5, positions: 8, typeVocab: 2 };
    const data = inputs(s, 17, 40, 7); // most ids past the end
    data.inputIds[0] = 0xffffffff;
    data.tokenTypeIds[1] = 0xffffffff;
    const got = await runEmbedding(await gpuEngine(), s, data);
    const ref = embeddingForwardRef(data.inputIds, data.tokenTypeIds, data.tables, s.seq, s.hidden);
    expectClose(got, ref, { atol: 1e-6, rtol: 1e-6 }, 'out');
    const lastWordRow = data.tables.word.subarray((s.vocab - 1) * s.hidden, s.vocab * s.hidden);
    const firstType = data.tables.tokenType.subarray(Math.min(data.tokenTypeIds[0], 1) * s.hidden);
    const expectedToken0 = lastWordRow.map((w, d) => w + firstType[d] + data.tables.position[d]);
    expectClose(got.subarray(0, s.hidden), expectedToken0, { atol: 1e-6, rtol: 1e-6 }, 'token 0 (id 2^32-1)');
  });

  it('folds launches over a 2-D grid past the per-dimension workgroup limit (limit lowered to 3)', async () => {
    const engine = await smallGridEngine(3);
    const s = { batch: 2, seq: 5, hidden: 103, vocab: 11, positions: 5, typeVocab: 2 }; // 1030 elements: 5 workgroups, a 3x2 grid
    const data = inputs(s, 5);
    expectBitIdentical(await runEmbedding(engine, s, data), huggingFaceOrderF32(s, data), 'out');
    engine.destroy();
  });

  it('splits the word table into row blocks under a lowered binding limit and equals the unsplit run bit for bit, f32 and f16', async () => {
    const s = { batch: 3, seq: 7, hidden: 9, vocab: 100, positions: 7, typeVocab: 2 };
    const data = inputs(s, 21, 130); // ids past the end clamp into the last block
    const small = await testEngine({ maxBindingBytes: 1000 });
    const unsplit = await runEmbedding(await gpuEngine(), s, data);
    const split = await runStored(small, s, data, 'f32');
    expect(split.wordBlocks).toBe(4); // 27 rows of 36 bytes per block
    expectBitIdentical(split.result, unsplit, 'split f32 vs unsplit');
    // f16 tables: the f32 sum of the halved values, bit for bit; 55 rows per block (495 halves: odd).
    const half = await runStored(small, s, data, 'f16');
    expect(half.wordBlocks).toBe(2);
    expectBitIdentical(half.result, huggingFaceOrderF32(s, halvedTables(data)), 'split f16 vs f32 sum of the halved tables');
    expectBitIdentical((await runStored(await gpuEngine(), s, data, 'f16')).result, half.result, 'unsplit f16 vs split f16');
    // Only the word table may be split: a position table over the limit is named.
    const long = { ...s, positions: 40 }; // 40 × 9 f32 = 1440 bytes: two blocks
    await expect(runStored(small, long, inputs(long, 4), 'f32')).rejects.toThrow(
      /embeddingForward: position \[40, 9\] is split into 2 blocks, and this kernel binds it whole/,
    );
    small.destroy();
  });

  it('is deterministic and rejects bad shapes, naming the tensor', async () => {
    const engine = await gpuEngine();
    const s = { batch: 2, seq: 4, hidden: 6, vocab: 10, positions: 4, typeVocab: 2 };
    const data = inputs(s, 8);
    expectBitIdentical(await runEmbedding(engine, s, data), await runEmbedding(engine, s, data), 'out');

    const ids = engine.upload(data.inputIds, [2, 4]);
    const types = engine.upload(data.tokenTypeIds, [2, 4]);
    const floatIds = engine.alloc([2, 4]);
    const word = engine.alloc([10, 6]);
    const position = engine.alloc([4, 6]);
    const shortPosition = engine.alloc([3, 6]);
    const tokenType = engine.alloc([2, 6]);
    const wrongWidth = engine.alloc([10, 5]);
    const out = engine.alloc([2, 4, 6]);
    const shortOut = engine.alloc([2, 3, 6]);
    const op = (a: Tensor, b: Tensor, c: Tensor, d: Tensor, e: Tensor, f: Tensor) => () => embeddingForward(engine, a, b, c, d, e, f);
    expect(op(ids, types, word, shortPosition, tokenType, out)).toThrow(/embeddingForward: seq 4 exceeds the 3 positions of posEmb/);
    expect(op(floatIds, types, word, position, tokenType, out)).toThrow(/inputIds must be u32, got f32/);
    expect(op(ids, floatIds, word, position, tokenType, out)).toThrow(/tokenTypeIds must be u32, got f32/);
    expect(op(ids, types, wrongWidth, position, tokenType, out)).toThrow(/wordEmb has shape \[10, 5\], expected \[rows, 6\]/);
    expect(op(ids, types, word, position, tokenType, word)).toThrow(/out must be \[batch, seq, hidden\]/);
    expect(op(ids, types, word, position, tokenType, shortOut)).toThrow(/out has shape \[2, 3, 6\], expected \[2, 4, 6\]/);
    engine.release(ids, types, floatIds, word, position, shortPosition, tokenType, wrongWidth, out, shortOut);
  });
});
