/**
 * Zero-shot statement scoring on the tiny decoder against a float64 log-softmax over the whole
 * vocabulary, taken from the hidden states of each statement's prompt + answer run alone: batching,
 * right padding, shared rows of single-token answers and the chunked LM head give the same log p.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { DecoderModel } from '../../src/model/decoder.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { type StatementPrompt, defaultStatementPrompt, encodeStatement } from '../../src/model/statement-prompt.ts';
import { scoreStatements } from '../../src/model/statement-score.ts';
import { readSafetensorsFile } from '../helpers/fixtures.ts';
import { referenceLogProbs } from '../helpers/decoder-reference.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writeTinyDecoder } from '../helpers/tiny-decoder.ts';

const STATEMENTS = ['TP53 is associated with sarcoma', 'A is associated with B', 'BRCA2 is associated with breast cancer'];

/** Σ_j log softmax(hidden[p−1+j] · headᵀ)[answer_j] in float64, from a forward of prompt + answer alone. */
async function referenceLogp(model: DecoderModel, head: Float32Array, prompt: number[], answer: number[]): Promise<number> {
  const logp = await referenceLogProbs(model, head, [...prompt, ...answer]);
  return answer.reduce((sum, target, j) => sum + logp(prompt.length - 1 + j, target), 0);
}

describe('statement scoring', () => {
  const prompts: [string, StatementPrompt][] = [
    ['multi-token answers', defaultStatementPrompt()],
    ['single-token answers (one shared row)', { template: 'Q: {statement}?\nA:', chat: false, answers: { true: ' a', false: ' t' } }],
    ['the chat form', defaultStatementPrompt(true)],
  ];

  it.each(prompts)('gives the float64 log p of each answer with %s', async (_, prompt) => {
    const engine = await gpuEngine();
    const dir = writeTinyDecoder(tempDir('score-'), { seed: 5 });
    const files = await openDecoderModel(localDirSource(dir));
    const model = await DecoderModel.create(engine, files.config, files.weights, { quantization: 'f32' });
    const head = readSafetensorsFile(join(dir, 'model.safetensors')).get('lm_head.weight')!.data as Float32Array;
    const encoded = STATEMENTS.map((s, i) => encodeStatement(files.tokenizer, prompt, s, i));
    // Batches of two: the second statement is padded in the first batch, the third runs alone.
    const scores = await scoreStatements(model, encoded, { padId: files.tokenizer.padId, batchSize: 2, chunk: 100 });
    for (const [i, s] of encoded.entries()) {
      const expected = { true: await referenceLogp(model, head, s.prompt, s.true), false: await referenceLogp(model, head, s.prompt, s.false) };
      expect(Math.abs(scores[i].logpTrue - expected.true), `statement ${i + 1} true`).toBeLessThan(1e-4);
      expect(Math.abs(scores[i].logpFalse - expected.false), `statement ${i + 1} false`).toBeLessThan(1e-4);
      expect(scores[i].margin).toBeCloseTo(scores[i].logpTrue - scores[i].logpFalse, 12);
      expect(scores[i].logpTrue).toBeLessThan(0);
    }
    model.destroy();
  });
});
