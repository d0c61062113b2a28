import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { packHalfRef, unpackHalfRef } from '../../src/engine/ops/half.ref.ts';
import { IGNORE_INDEX, lmHeadLogits, lmHeadLossBackward, lmHeadLossForward, uploadLmTargets } from '../../src/engine/ops/lm-head-loss.ts';
import { lmHeadLogitsRef, lmHeadLossRef } from '../../src/engine/ops/lm-head-loss.ref.ts';
import { type StoragePrecision, releaseStored, storeMatrix } from '../../src/engine/stored.ts';
import { Rng } from '../../src/data/rng.ts';
import { gpuEngine, readAll, testEngine } from '../helpers/gpu.ts';
import { expectBitIdentical, expectClose, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

/** Random targets with about a quarter of the rows ignored (always row 0 when there are several). */
function randomTargets(seed: number, rows: number, vocab: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: rows }, (_, r) => ((r === 0 && rows > 1) || rng.next() < 0.25 ? IGNORE_INDEX : rng.int(vocab)));
}

function inputs(rows: number, width: number, vocab: number, seed: number) {
  return { hidden: randomArray(seed, rows * width), head: randomArray(seed + 1, vocab * width, 0.5), targets: randomTargets(seed + 2, rows, vocab) };
}

/** Loss, lse, d(hidden) and logits; the head as one tensor, or stored in `precision` row blocks that fit the engine's binding. */
async function runLoss(engine: Engine, rows: number, width: number, vocab: number, chunk: number, data: ReturnType<typeof inputs>, precision?: StoragePrecision) {
  const hidden = engine.upload(data.hidden, [rows, width]);
  const head = precision ? storeMatrix(engine, 'lm_head.weight', data.head, [vocab, width], precision) : engine.upload(data.head, [vocab, width]);
  const targets = uploadLmTargets(engine, data.targets, vocab);
  const loss = engine.alloc([1]);
  const tokenLoss = engine.alloc([rows]);
  const lse = engine.alloc([rows]);
  const dHidden = engine.alloc([rows, width]);
  lmHeadLossForward(engine, hidden, head, targets, { loss, tokenLoss, lse }, { chunk });
  lmHeadLossBackward(engine, hidden, head, targets, lse, dHidden, { chunk });
  const logits = engine.alloc([rows, vocab]);
  lmHeadLogits(engine, hidden, head, logits, { chunk });
  const got = await readAll(engine, { loss, tokenLoss, lse, dHidden, logits });
  if ('blocks' in head) releaseStored(engine, head);
  else engine.release(head);
  engine.release(hidden, targets.ids, loss, tokenLoss, lse, dHidden, logits);
  return got;
}

/** Logits are f32 dot products of H terms (|z| up to ~10): lse and losses to 1e-5 relative, d(hidden) to 1e-6 absolute. */
function expectMatchesReference(got: Awaited<ReturnType<typeof runLoss>>, width: number, data: ReturnType<typeof inputs>) {
  const ref = lmHeadLossRef(data.hidden, data.head, data.targets, width, IGNORE_INDEX);
  const tol = { atol: 1e-5, rtol: 1e-5 };
  expectClose(got.loss, [ref.loss], tol, 'loss');
  expectClose(got.tokenLoss, ref.tokenLoss, tol, 'tokenLoss');
  expectClose(got.lse, ref.lse, tol, 'lse');
  expectClose(got.dHidden, ref.dHidden, { atol: 1e-6, rtol: 1e-5 }, 'dHidden');
  expectClose(got.logits, lmHeadLogitsRef(data.hidden, data.head, width), tol, 'logits');
}

describe('LM-head cross-entropy in vocabulary chunks', () => {
  it.each([
    [1, 1, 1, 1],
    [5, 6, 11, 4], // 3 chunks, the last of 3 columns
    [7, 33, 100, 7], // 15 chunks, the last of 2
    [17, 64, 1000, 96], // 11 chunks, the last of 40
    [4, 8, 10, 64], // one chunk larger than the vocabulary
  ])('loss, per-token loss, lse and d(hidden) match the float64 reference, rows=%i H=%i V=%i chunk=%i', async (rows, width, vocab, chunk) => {
    const data = inputs(rows, width, vocab, rows + width + vocab);
    expectMatchesReference(await runLoss(await gpuEngine(), rows, width, vocab, chunk, data), width, data);
  });

  // A 256-byte binding: the f32 head [30, 5] in blocks of 12, 12, 6 rows, the f16 one in 25 and 5;
  // chunks of 3 end at block edges, and f16 chunks start at odd halves (offset 15 in a block).
  it.each(['f32', 'f16'] as const)('a head stored in %s row blocks gives the reference on the values it holds', async (precision) => {
    const engine = await testEngine({ maxBindingBytes: 256 });
    const data = inputs(2, 5, 30, 9);
    data.targets[0] = 29; // a target in the last block
    const got = await runLoss(engine, 2, 5, 30, 3, data, precision);
    const held = precision === 'f32' ? data.head : Float32Array.from(unpackHalfRef(packHalfRef(data.head), data.head.length));
    expectMatchesReference(got, 5, { ...data, head: held });
    engine.destroy();
  });

  it('with every target ignored, loss and d(hidden) are 0', async () => {
    const data = inputs(3, 4, 7, 6);
    data.targets.fill(IGNORE_INDEX);
    const got = await runLoss(await gpuEngine(), 3, 4, 7, 3, data);
    expect(got.loss[0]).toBe(0);
    expect(got.dHidden.every((g) => g === 0)).toBe(true);
  });

  it('folds launches over a 2-D grid past the per-dimension workgroup limit (limit lowered to 3)', async () => {
    const engine = await smallGridEngine(3);
    // 200 rows: 4 row workgroups of 64 (2×2); a chunk of 16 × 200 rows = 13 workgroups of 256 would not fold into 3×3, so chunk 10: 8.
    const data = inputs(200, 8, 50, 7);
    expectMatchesReference(await runLoss(engine, 200, 8, 50, 10, data), 8, data);
    engine.destroy();
  });

  it('is deterministic: two runs are bit-identical', async () => {
    const data = inputs(30, 32, 300, 8);
    const first = await runLoss(await gpuEngine(), 30, 32, 300, 64, data);
    const second = await runLoss(await gpuEngine(), 30, 32, 300, 64, data);
    for (const key of ['loss', 'tokenLoss', 'lse', 'dHidden'] as const) expectBitIdentical(first[key], second[key], key);
  });

  it('rejects targets outside the vocabulary, a non-negative ignore index and mismatched shapes, naming the problem', async () => {
    const engine = await gpuEngine();
    expect(() => uploadLmTargets(engine, [0, 7], 7)).toThrow(/target 7 of row 1 is neither a token id in \[0, 7\) nor the ignore index -100/);
    expect(() => uploadLmTargets(engine, [0, 1.5], 7)).toThrow(/target 1.5 of row 1/);
    expect(() => uploadLmTargets(engine, [0], 7, 0)).toThrow(/ignoreIndex must be a negative integer/);
    const targets = uploadLmTargets(engine, [1, IGNORE_INDEX, 2], 7);
    expect(targets.count).toBe(2);
    const hidden = engine.alloc([3, 4]);
    const head = engine.alloc([7, 4]);
    const wrongHead = engine.alloc([8, 4]);
    const loss = engine.alloc([1]);
    const rows = engine.alloc([3]);
    const lse = engine.alloc([3]);
    const out = { loss, tokenLoss: rows, lse };
    expect(() => lmHeadLossForward(engine, hidden, wrongHead, targets, out, { chunk: 4 })).toThrow(/lmHeadLossForward: head has shape \[8, 4\], expected \[7, 4\]/);
    expect(() => lmHeadLossForward(engine, hidden, head, targets, out, { chunk: 0 })).toThrow(/chunk must be a positive integer/);
    expect(() => lmHeadLossForward(engine, hidden, head, targets, { ...out, lse: loss }, { chunk: 4 })).toThrow(/lse has shape \[1\], expected \[3\]/);
    expect(() => lmHeadLossForward(engine, hidden, head, targets, { ...out, lse: rows }, { chunk: 4 })).toThrow(/outputs tokenLoss and lse share one buffer/);
    expect(() => lmHeadLossBackward(engine, hidden, head, targets, lse, hidden, { chunk: 4 })).toThrow(/output dHidden shares a buffer with input hidden/);
    const wide = engine.alloc([3, 5]);
    expect(() => lmHeadLossBackward(engine, wide, head, targets, lse, hidden, { chunk: 4 })).toThrow(/lmHeadLossBackward: head has shape \[7, 4\], expected \[7, 5\]/);
    const stored = storeMatrix(engine, 'lm_head.weight', new Float32Array(32), [8, 4], 'f16');
    expect(() => lmHeadLossForward(engine, hidden, stored, targets, out, { chunk: 4 })).toThrow(/lmHeadLossForward: head lm_head.weight is \[8, 4\], expected \[7, 4\]/);
    releaseStored(engine, stored);
    engine.release(targets.ids, hidden, head, wrongHead, loss, rows, lse, wide);
  });
});
