/**
 * Statements as prompts and answer targets: answer ids are what follows the prompt's ids, the chat
 * form goes through the template, rows are shared when the answers' inputs agree, and targets sit
 * on the answer tokens only.
 */
import { describe, expect, it } from 'vitest';
import { IGNORE_INDEX } from '../../src/engine/ops/lm-head-loss.ts';
import { loadDecoderTokenizer } from '../../src/model/decoder-tokenizer.ts';
import { statementScoringBatch, statementTrainingBatch } from '../../src/model/statement-batch.ts';
import { type StatementPrompt, defaultStatementPrompt, encodeStatement } from '../../src/model/statement-prompt.ts';
import { byteLevelTokenizer } from '../helpers/decoder-tokenizers.ts';

const files = byteLevelTokenizer({ bosTemplate: true });
const tokenizer = loadDecoderTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: files.tokenizerConfig() });
const BOS = tokenizer.prefixIds[0];
/** " a" and " t" are single merged tokens of the tiny tokenizer. */
const SINGLE: StatementPrompt = { template: 'Q: {statement}?\nA:', chat: false, answers: { true: ' a', false: ' t' } };

/** The non-ignored targets of each row as [row, column, id]. */
function targetsOf(targets: Int32Array, seq: number): [number, number, number][] {
  const out: [number, number, number][] = [];
  targets.forEach((id, k) => {
    if (id !== IGNORE_INDEX) out.push([Math.floor(k / seq), k % seq, id]);
  });
  return out;
}

describe('encodeStatement', () => {
  it('puts the leading special tokens before the prompt and gives each answer the ids that follow it', () => {
    const s = encodeStatement(tokenizer, defaultStatementPrompt(), 'BRCA1 is associated with cancer', 0);
    const text = 'Is the following statement true or false?\nBRCA1 is associated with cancer\nAnswer:';
    expect(s.prompt).toEqual([BOS, ...tokenizer.encode(text, { specialTokens: false })]);
    expect([...s.prompt.slice(1), ...s.true]).toEqual(tokenizer.encode(`${text} True`, { specialTokens: false }));
    expect(tokenizer.decode(s.false)).toBe(' False');
  });

  it('renders the chat form through the template with the generation prompt', () => {
    const s = encodeStatement(tokenizer, defaultStatementPrompt(true), 'X is associated with Y', 0);
    const chat = tokenizer.applyChatTemplate([{ role: 'user', content: 'Is the following statement true or false?\nX is associated with Y\nAnswer:' }], { addGenerationPrompt: true });
    expect(s.prompt).toEqual(chat.ids);
    expect(tokenizer.decode(s.true)).toBe('True');
  });

  it('refuses an answer that merges with the end of the prompt, and empty statements', () => {
    // "Ġ" then "t" after a prompt ending in a space merge into "Ġt".
    const merging: StatementPrompt = { template: 'Q: {statement} ', chat: false, answers: { true: 't', false: 'x' } };
    expect(() => encodeStatement(tokenizer, merging, 'A is B', 2)).toThrow(/statement 3: the true answer "t" merges with the end of the prompt/);
    expect(() => encodeStatement(tokenizer, SINGLE, '  ', 4)).toThrow('statement 5 is empty');
  });
});

describe('statement batches', () => {
  it('shares one row between single-token answers and targets the last prompt position', () => {
    const statements = ['A is B', 'Cx is D'].map((s, i) => encodeStatement(tokenizer, SINGLE, s, i));
    expect(statements.every((s) => s.true.length === 1 && s.false.length === 1)).toBe(true);
    const { batch, targets, spans } = statementScoringBatch(statements, tokenizer.padId, 64);
    expect(batch.batch).toBe(2);
    expect(spans[1]).toEqual({ true: { row: 1, start: statements[1].prompt.length - 1, length: 1 }, false: { row: 1, start: statements[1].prompt.length - 1, length: 1 } });
    expect(targetsOf(targets.true, batch.seq)).toEqual(statements.map((s, i) => [i, s.prompt.length - 1, s.true[0]]));
    expect(targetsOf(targets.false, batch.seq)).toEqual(statements.map((s, i) => [i, s.prompt.length - 1, s.false[0]]));
  });

  it('gives multi-token answers a row each, the answer but its last token as input', () => {
    const s = encodeStatement(tokenizer, defaultStatementPrompt(), 'A is B', 0);
    const { batch, targets, spans } = statementScoringBatch([s], tokenizer.padId, 64);
    expect(batch.batch).toBe(2);
    const p = s.prompt.length;
    expect(Array.from(batch.inputIds.slice(batch.seq, batch.seq + p + s.false.length - 1))).toEqual([...s.prompt, ...s.false.slice(0, -1)]);
    expect(spans[0].false).toEqual({ row: 1, start: p - 1, length: s.false.length });
    expect(targetsOf(targets.false, batch.seq)).toEqual(s.false.map((id, j) => [1, p - 1 + j, id]));
    expect(targetsOf(targets.true, batch.seq)).toEqual(s.true.map((id, j) => [0, p - 1 + j, id]));
  });

  it('trains on the labelled answer only, and refuses rows longer than allowed', () => {
    const statements = ['A is B', 'C is D'].map((s, i) => encodeStatement(tokenizer, defaultStatementPrompt(), s, i));
    const { batch, targets } = statementTrainingBatch(statements, [true, false], tokenizer.padId, 64);
    const p = statements[0].prompt.length;
    expect(targetsOf(targets, batch.seq)).toEqual([...statements[0].true.map((id, j) => [0, p - 1 + j, id]), ...statements[1].false.map((id, j) => [1, p - 1 + j, id])]);
    expect(() => statementTrainingBatch(statements, [true], tokenizer.padId, 64)).toThrow('1 labels for 2 statements');
    expect(() => statementScoringBatch(statements, tokenizer.padId, 10)).toThrow(/statement 1: its prompt and answer .* take \d+ positions, more than the 10 allowed/);
  });
});
