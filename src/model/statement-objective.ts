/**
 * The statement training objective: causal-LM loss on prompt + correct answer, counted on the answer
 * tokens only (statementTrainingBatch), so training moves log p(correct answer | prompt), the
 * quantity zero-shot scoring compares. The loss is the mean over those tokens, as Hugging Face's
 * loss with the prompt's labels at −100; with single-token answers, the mean over statements.
 */
import type { Tensor } from '../engine/tensor.ts';
import { DEFAULT_LM_HEAD_CHUNK, type DecoderModel } from './decoder.ts';
import { statementTrainingBatch } from './statement-batch.ts';
import type { EncodedStatement } from './statement-prompt.ts';

export interface StatementStepOptions {
  padId: number;
  /** Seed of the step's LoRA dropout masks. */
  seed: number;
  chunk?: number;
}

/**
 * Record forward, loss and backward of one batch of labelled statements into the trainable
 * adapter's gradients (accumulated); returns the loss [1], which the caller reads and releases.
 */
export function recordStatementStep(model: DecoderModel, statements: EncodedStatement[], labels: ArrayLike<boolean>, options: StatementStepOptions): Tensor {
  const { batch, targets } = statementTrainingBatch(statements, labels, options.padId, model.config.maxSequenceLength);
  const chunk = options.chunk ?? DEFAULT_LM_HEAD_CHUNK;
  const result = model.forward(batch, { train: true, seed: options.seed });
  const loss = model.loss(result, targets, chunk);
  model.backwardLoss(result, loss, chunk);
  model.releaseForward(result);
  model.engine.release(loss.tokenLoss, loss.lse, loss.targets.ids);
  return loss.loss;
}
