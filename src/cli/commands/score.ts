/**
 * `qlora-lab score`: zero-shot accuracy of a decoder LLM on labelled statements, judged as the CTD
 * study did (log p of the true vs the false answer after a question about the statement), with
 * bootstrap intervals; the report keeps every statement's log-probabilities and margin.
 */
import { formatInterval } from '../../eval/format.ts';
import { statementMetrics } from '../../eval/statement-accuracy.ts';
import { type StatementPrompt, STATEMENT_PLACEHOLDER, checkStatementPrompt, defaultAnswers, defaultStatementPrompt, encodeStatement } from '../../model/statement-prompt.ts';
import { scoreStatements } from '../../model/statement-score.ts';
import { numberOption, parseOptions, required } from '../args.ts';
import { modelKind, openDecoder } from '../decoder.ts';
import { UsageError } from '../errors.ts';
import { checkOutputPath, writeOutputFile } from '../output.ts';
import { readStatementFile } from '../statement-file.ts';

export const summary = 'zero-shot accuracy of a decoder LLM on true/false statements (answer log-probabilities)';

const USAGE = `usage: qlora-lab score --model <dir|hub-id> --statements FILE --out report.json [options]
  --model <dir|org/name[@revision]>  decoder LLM folder or Hugging Face repo id (required)
  --base nf4|f32                      frozen base precision (default nf4)
  --statements FILE                   one statement per line: the statement, a tab, its label
                                      (true/false, yes/no or 1/0); a "statement<TAB>label" header is skipped
  --template TEXT                     the question, with ${STATEMENT_PLACEHOLDER} where the statement goes
                                      (default ${JSON.stringify(defaultStatementPrompt().template)})
  --chat                              put the question through the model's chat template
  --answer-true TEXT, --answer-false TEXT
                                      the answers compared (default " True" / " False", "True" / "False" with --chat)
  --batch-size N                      statements per GPU batch (default 16)
  --resamples N                       bootstrap resamples for the 95% intervals (default 1000)
  --seed N                            bootstrap seed (default 0)
  --adapter <dir>                     PEFT causal-LM adapter folder; repeat to stack adapters in order`;

export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(
    args,
    {
      model: { type: 'string' },
      base: { type: 'string', default: 'nf4' },
      statements: { type: 'string' },
      out: { type: 'string' },
      template: { type: 'string' },
      chat: { type: 'boolean', default: false },
      'answer-true': { type: 'string' },
      'answer-false': { type: 'string' },
      'batch-size': { type: 'string' },
      resamples: { type: 'string' },
      seed: { type: 'string' },
      adapter: { type: 'string', multiple: true },
    },
    USAGE,
  );
  const model = required(values, 'model', USAGE);
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'file');
  const chat = values.chat === true;
  const answers = defaultAnswers(chat);
  const prompt: StatementPrompt = {
    template: values.template ?? defaultStatementPrompt(chat).template,
    chat,
    answers: { true: values['answer-true'] ?? answers.true, false: values['answer-false'] ?? answers.false },
  };
  try {
    checkStatementPrompt(prompt);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const rows = await readStatementFile(required(values, 'statements', USAGE));
  const batchSize = numberOption(values, 'batch-size', 16, (n) => Number.isInteger(n) && n > 0);
  const bootstrap = { resamples: numberOption(values, 'resamples', 1000, (n) => Number.isInteger(n) && n > 0), seed: numberOption(values, 'seed', 0, Number.isInteger) };
  if ((await modelKind(model)) === 'encoder') throw new UsageError(`--model ${model} is not a decoder LLM (config.json names no Llama-family architecture); statements are scored by a decoder's answer log-probabilities`);

  const cli = await openDecoder(values, (values.adapter as string[] | undefined) ?? []);
  let scores: Awaited<ReturnType<typeof scoreStatements>>;
  try {
    const { tokenizer } = cli.files;
    if (chat && !tokenizer.hasChatTemplate) throw new UsageError(`--chat: ${model} has no chat_template in tokenizer_config.json`);
    const encoded = rows.map((r, i) => encodeStatement(tokenizer, prompt, r.statement, i));
    scores = await scoreStatements(cli.model, encoded, { padId: tokenizer.padId, batchSize, onProgress: (done) => process.stderr.write(`\rscored ${done}/${rows.length}`) });
    process.stderr.write('\n');
  } finally {
    cli.model.destroy();
    cli.engine.destroy();
  }

  const labels = rows.map((r) => r.label);
  const metrics = statementMetrics(
    scores.map((s) => s.margin),
    labels,
    bootstrap,
  );
  console.log(`zero-shot accuracy ${formatInterval(metrics.accuracy)} on ${metrics.statements} statements (${metrics.trueStatements} true), AUROC of the margin ${formatInterval(metrics.auroc)} (95% bootstrap intervals)`);
  const statements = rows.map((r, i) => ({ ...r, ...scores[i] }));
  await writeOutputFile(out, `${JSON.stringify({ model, base: values.base, prompt, metrics, statements }, null, 2)}\n`);
}
