/**
 * Labelled statements put to a decoder on the command line (`score`, and `eval --statements`): the
 * prompt options and the scoring of a statement file's rows under them, so zero-shot accuracy is
 * measured the same way by both commands, before and after training.
 */
import { type StatementPrompt, STATEMENT_PLACEHOLDER, checkStatementPrompt, defaultAnswers, defaultStatementPrompt, encodeStatement } from '../model/statement-prompt.ts';
import { type StatementScore, scoreStatements } from '../model/statement-score.ts';
import type { CliDecoder } from './decoder.ts';
import { UsageError } from './errors.ts';
import type { LabelledStatement } from './statement-file.ts';

/** Statements per GPU batch unless --batch-size says. */
export const DEFAULT_STATEMENT_BATCH = 16;

export const STATEMENT_PROMPT_OPTIONS = {
  template: { type: 'string' },
  chat: { type: 'boolean' },
  'answer-true': { type: 'string' },
  'answer-false': { type: 'string' },
} as const;

export const STATEMENT_FILE_USAGE = `  --statements FILE                   one statement per line: the statement, a tab, its label
                                      (true/false, yes/no or 1/0); a "statement<TAB>label" header is skipped`;

export const STATEMENT_PROMPT_USAGE = `  --template TEXT                     the question, with ${STATEMENT_PLACEHOLDER} where the statement goes
                                      (default ${JSON.stringify(defaultStatementPrompt().template)})
  --chat                              put the question through the model's chat template
  --answer-true TEXT, --answer-false TEXT
                                      the answers compared (default " True" / " False", "True" / "False" with --chat)`;

/** The statement prompt the options describe (defaults for those not given), checked. */
export function statementPromptOf(values: Record<string, unknown>): StatementPrompt {
  const chat = values.chat === true;
  const answers = defaultAnswers(chat);
  const prompt: StatementPrompt = {
    template: (values.template as string | undefined) ?? defaultStatementPrompt(chat).template,
    chat,
    answers: { true: (values['answer-true'] as string | undefined) ?? answers.true, false: (values['answer-false'] as string | undefined) ?? answers.false },
  };
  try {
    checkStatementPrompt(prompt);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return prompt;
}

/** Each statement's answer log-probabilities under the decoder as it stands (its adapters on), `batchSize` statements per pass. */
export async function scoreStatementRows(cli: CliDecoder, model: string, prompt: StatementPrompt, rows: LabelledStatement[], batchSize: number): Promise<StatementScore[]> {
  const { tokenizer } = cli.files;
  if (prompt.chat && !tokenizer.hasChatTemplate) throw new UsageError(`--chat: ${model} has no chat_template in tokenizer_config.json`);
  const encoded = rows.map((r, i) => encodeStatement(tokenizer, prompt, r.statement, i));
  const scores = await scoreStatements(cli.model, encoded, { padId: tokenizer.padId, batchSize, onProgress: (done) => process.stderr.write(`\rscored ${done}/${rows.length}`) });
  process.stderr.write('\n');
  return scores;
}
