/**
 * `qlora-lab eval` for a decoder --model: the decoder with its adapter folders, embedding texts as
 * `embed` does (the encoder options that apply to a decoder, prompts refused) and scoring labelled
 * statements as `score` does, each with the adapters on or off, for eval's before/after.
 */
import type { Embedder } from '../eval/types.ts';
import { embedDecoderTexts } from '../model/decoder-embed.ts';
import type { StatementScore } from '../model/statement-score.ts';
import { openDecoder } from './decoder.ts';
import { decoderEmbedOptions, describeDecoderEmbedding } from './decoder-embed.ts';
import { DEFAULT_STATEMENT_BATCH, scoreStatementRows, statementPromptOf } from './decoder-statements.ts';
import type { LabelledStatement } from './statement-file.ts';

export interface DecoderEval {
  /** Embeddings of texts by the base decoder (false) or the decoder with its adapters (true); the role is moot, a decoder has no prompts. */
  embedWith(adapted: boolean): Embedder;
  /** The statements' answer log-probabilities by the base decoder or the adapted one. */
  scoreWith(adapted: boolean): Promise<StatementScore[]>;
  /** How the decoder embedded and questioned, for the report. */
  details: Record<string, unknown>;
  destroy(): void;
}

/** The decoder --model names, ready to embed (when `embeds`) and to score `statements` (when given); options are checked before the GPU starts. */
export async function openDecoderEval(values: Record<string, unknown>, embeds: boolean, statements: LabelledStatement[] | undefined): Promise<DecoderEval> {
  const embedding = embeds ? decoderEmbedOptions(values) : undefined;
  const prompt = statements ? statementPromptOf(values) : undefined;
  const cli = await openDecoder(values, (values.adapter as string[] | undefined) ?? []);
  const use = (adapted: boolean) => {
    cli.model.adapters = adapted ? [...cli.adapters] : [];
  };
  if (embedding) process.stderr.write(`${describeDecoderEmbedding(embedding)}\n`);
  return {
    embedWith: (adapted) => async (texts) => {
      if (!embedding) throw new Error('this evaluation was opened without embeddings');
      use(adapted);
      return embedDecoderTexts(cli.model, cli.files.tokenizer, texts, embedding);
    },
    scoreWith: async (adapted) => {
      if (!statements || !prompt) throw new Error('this evaluation was opened without statements');
      use(adapted);
      return scoreStatementRows(cli, values.model as string, prompt, statements, DEFAULT_STATEMENT_BATCH);
    },
    details: { ...(embedding ? { embedding } : {}), ...(prompt ? { prompt } : {}) },
    destroy: () => {
      cli.model.destroy();
      cli.engine.destroy();
    },
  };
}
