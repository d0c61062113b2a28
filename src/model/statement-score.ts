/**
 * Zero-shot statement scoring on the GPU, as the CTD study judged its statements: log p(answer |
 * prompt) summed over the answer's tokens, for the true and the false answer. The log-probabilities
 * come from the chunked LM-head loss with targets on the answer tokens only (its per-row −log p),
 * so no [positions, vocabulary] logits are ever held; sums are taken in float64 on the host.
 */
import { DEFAULT_LM_HEAD_CHUNK, type DecoderModel } from './decoder.ts';
import { type AnswerKind, statementScoringBatch } from './statement-batch.ts';
import type { EncodedStatement } from './statement-prompt.ts';

export interface StatementScore {
  /** log p of the true and the false answer after the prompt (sums over the answer's tokens). */
  logpTrue: number;
  logpFalse: number;
  /** logpTrue − logpFalse: positive when the model prefers "true". */
  margin: number;
}

export interface ScoreOptions {
  padId: number;
  /** Statements per forward pass (default 16). */
  batchSize?: number;
  /** LM-head vocabulary rows per chunk. */
  chunk?: number;
  onProgress?: (done: number) => void;
}

export async function scoreStatements(model: DecoderModel, statements: EncodedStatement[], options: ScoreOptions): Promise<StatementScore[]> {
  const { engine } = model;
  const batchSize = options.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`statement batch size must be a positive integer, got ${batchSize}`);
  const scores: StatementScore[] = [];
  for (let start = 0; start < statements.length; start += batchSize) {
    const { batch, targets, spans } = statementScoringBatch(statements.slice(start, start + batchSize), options.padId, model.config.maxSequenceLength);
    const result = model.forward(batch, { train: false, seed: 0 });
    const logp = {} as Record<AnswerKind, number[]>;
    for (const kind of ['true', 'false'] as const) {
      const loss = model.loss(result, targets[kind], options.chunk ?? DEFAULT_LM_HEAD_CHUNK);
      const tokenLoss = await engine.readF32(loss.tokenLoss);
      model.releaseLoss(loss);
      logp[kind] = spans.map(({ [kind]: span }) => {
        let sum = 0;
        for (let j = 0; j < span.length; j++) sum -= tokenLoss[span.row * batch.seq + span.start + j];
        return sum;
      });
    }
    model.releaseForward(result);
    spans.forEach((_, i) => scores.push({ logpTrue: logp.true[i], logpFalse: logp.false[i], margin: logp.true[i] - logp.false[i] }));
    options.onProgress?.(scores.length);
  }
  return scores;
}
