/**
 * Encoded statements as decoder batches whose LM-head targets are an answer's tokens only
 * (IGNORE_INDEX elsewhere), so the chunked LM-head loss yields −log p of each answer token.
 *
 * A row is the prompt followed by the answer without its last token: hidden row (prompt length − 1
 * + j) predicts answer token j, and the last answer token is never an input. Scoring needs both
 * answers; when their rows are the same ids (single-token answers, the usual case) one row serves
 * both, read through two target vectors, which halves the forward passes.
 */
import { IGNORE_INDEX } from '../engine/ops/lm-head-loss.ts';
import type { DecoderBatch } from './decoder.ts';
import type { EncodedStatement } from './statement-prompt.ts';
import { padRows } from './tokenizer.ts';

export type AnswerKind = 'true' | 'false';

/** Where an answer's targets lie: hidden rows row·seq + start … + length. */
export interface AnswerSpan {
  row: number;
  start: number;
  length: number;
}

export interface StatementScoringBatch {
  batch: DecoderBatch;
  /** One target per hidden row for each answer, IGNORE_INDEX off that answer's span. */
  targets: Record<AnswerKind, Int32Array>;
  /** Per statement, where each answer's targets lie. */
  spans: Record<AnswerKind, AnswerSpan>[];
}

function answerRow(s: EncodedStatement, kind: AnswerKind): number[] {
  return [...s.prompt, ...s[kind].slice(0, -1)];
}

function sameIds(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((id, k) => id === b[k]);
}

/** Checks each row against the longest sequence the caller allows (the model's positions). */
function padChecked(rows: number[][], rowStatement: number[], padId: number, maxLength: number): DecoderBatch {
  rows.forEach((row, r) => {
    if (row.length > maxLength) throw new Error(`statement ${rowStatement[r] + 1}: its prompt and answer (but the answer's last token) take ${row.length} positions, more than the ${maxLength} allowed; shorten the prompt`);
  });
  return padRows(rows, padId);
}

function fillTargets(targets: Int32Array, seq: number, span: AnswerSpan, answer: number[]): void {
  for (let j = 0; j < span.length; j++) targets[span.row * seq + span.start + j] = answer[j];
}

/** Both answers of each statement, in as few rows as their ids allow. */
export function statementScoringBatch(statements: EncodedStatement[], padId: number, maxLength: number): StatementScoringBatch {
  if (statements.length === 0) throw new Error('no statements to score');
  const rows: number[][] = [];
  const rowStatement: number[] = [];
  const layout = statements.map((s, i) => {
    const trueRow = answerRow(s, 'true');
    const falseRow = answerRow(s, 'false');
    const first = rows.push(trueRow) - 1;
    rowStatement.push(i);
    if (sameIds(trueRow, falseRow)) return { true: first, false: first };
    rows.push(falseRow);
    rowStatement.push(i);
    return { true: first, false: first + 1 };
  });
  const batch = padChecked(rows, rowStatement, padId, maxLength);
  const targets = { true: new Int32Array(rows.length * batch.seq).fill(IGNORE_INDEX), false: new Int32Array(rows.length * batch.seq).fill(IGNORE_INDEX) };
  const spans = statements.map((s, i) => {
    const span = (kind: AnswerKind): AnswerSpan => ({ row: layout[i][kind], start: s.prompt.length - 1, length: s[kind].length });
    const both = { true: span('true'), false: span('false') };
    for (const kind of ['true', 'false'] as const) fillTargets(targets[kind], batch.seq, both[kind], s[kind]);
    return both;
  });
  return { batch, targets, spans };
}

/**
 * The statement objective's batch: each statement's prompt and its correct answer (the label's),
 * targets on that answer's tokens only, so the causal-LM loss is the mean −log p over the correct
 * answers' tokens, the quantity zero-shot scoring compares.
 */
export function statementTrainingBatch(statements: EncodedStatement[], labels: ArrayLike<boolean>, padId: number, maxLength: number): { batch: DecoderBatch; targets: Int32Array } {
  if (statements.length === 0) throw new Error('no statements to train on');
  if (labels.length !== statements.length) throw new Error(`${labels.length} labels for ${statements.length} statements`);
  const kinds = statements.map((_, i): AnswerKind => (labels[i] ? 'true' : 'false'));
  const batch = padChecked(
    statements.map((s, i) => answerRow(s, kinds[i])),
    statements.map((_, i) => i),
    padId,
    maxLength,
  );
  const targets = new Int32Array(batch.batch * batch.seq).fill(IGNORE_INDEX);
  statements.forEach((s, i) => fillTargets(targets, batch.seq, { row: i, start: s.prompt.length - 1, length: s[kinds[i]].length }, s[kinds[i]]));
  return { batch, targets };
}
