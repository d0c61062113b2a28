/**
 * `qlora-lab eval` for a decoder --model: the decoder with its adapter folders, embedding texts as
 * `embed` does (the encoder options that apply to a decoder, prompts refused), scoring labelled
 * statements as `score` does and measuring each text's next-token loss (perplexity), each with the
 * adapters on or off, for eval's before/after. --stack folders stay on for both: "before" is the
 * base with the stack (a domain adapter under a task adapter), "after" adds the --adapter ones.
 */
import { type TextLoss, textLosses } from '../eval/perplexity.ts';
import type { Embedder } from '../eval/types.ts';
import { embedDecoderTexts } from '../model/decoder-embed.ts';
import type { StatementScore } from '../model/statement-score.ts';
import { maxLengthFor, openDecoder } from './decoder.ts';
import { decoderEmbedOptions, describeDecoderEmbedding } from './decoder-embed.ts';
import { DEFAULT_STATEMENT_BATCH, scoreStatementRows, statementPromptOf } from './decoder-statements.ts';
import type { LabelledStatement } from './statement-file.ts';

export interface DecoderEval {
  /** Embeddings of texts by the base decoder (false) or the decoder with its adapters (true); the role is moot, a decoder has no prompts. */
  embedWith(adapted: boolean): Embedder;
  /** The statements' answer log-probabilities by the base decoder or the adapted one. */
  scoreWith(adapted: boolean): Promise<StatementScore[]>;
  /** Each text's next-token loss by the base decoder or the adapted one. */
  lossesWith(adapted: boolean): Promise<TextLoss[]>;
  /** How the decoder embedded and questioned, for the report. */
  details: Record<string, unknown>;
  destroy(): void;
}

/** Tokens per sequence of the perplexity texts unless --max-length says (longer texts are cut into several). */
export const PERPLEXITY_MAX_LENGTH = 512;

/** What a decoder is evaluated on: embedded pairs, labelled statements, texts for perplexity. */
export interface DecoderEvalInputs {
  embeds: boolean;
  statements?: LabelledStatement[];
  texts?: string[];
}

/** The decoder --model names, ready for the `inputs` given; options are checked before the GPU starts. */
export async function openDecoderEval(values: Record<string, unknown>, inputs: DecoderEvalInputs): Promise<DecoderEval> {
  const { statements, texts } = inputs;
  const embedding = inputs.embeds ? decoderEmbedOptions(values) : undefined;
  const prompt = statements ? statementPromptOf(values) : undefined;
  const stack = (values.stack as string[] | undefined) ?? [];
  const adapters = (values.adapter as string[] | undefined) ?? [];
  let maxLength = PERPLEXITY_MAX_LENGTH;
  const cli = await openDecoder(values, [...stack, ...adapters], {
    check: (files) => {
      if (texts) maxLength = maxLengthFor(files.config, values, PERPLEXITY_MAX_LENGTH);
    },
  });
  const use = (adapted: boolean) => {
    cli.model.adapters = adapted ? [...cli.adapters] : cli.adapters.slice(0, stack.length);
  };
  if (embedding) process.stderr.write(`${describeDecoderEmbedding(embedding)}\n`);
  if (stack.length) process.stderr.write(`base: the model with ${stack.join(' then ')} stacked; adapted: ${adapters.length ? `with ${adapters.join(' then ')} on top` : 'the same (no --adapter)'}\n`);
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
    lossesWith: async (adapted) => {
      if (!texts) throw new Error('this evaluation was opened without texts');
      use(adapted);
      const losses = await textLosses(cli.model, cli.files.tokenizer, texts, { maxLength, onProgress: (done, total) => process.stderr.write(`\rperplexity (${adapted ? 'adapted' : 'base'}): ${done}/${total} sequences`) });
      process.stderr.write('\n');
      return losses;
    },
    details: { ...(embedding ? { embedding } : {}), ...(prompt ? { prompt } : {}), ...(texts ? { max_length: maxLength } : {}), ...(stack.length ? { stack } : {}) },
    destroy: () => {
      cli.model.destroy();
      cli.engine.destroy();
    },
  };
}
