/**
 * `qlora-lab score`: zero-shot accuracy of a decoder LLM on labelled statements, judged as the CTD
 * study did (log p of the true vs the false answer after a question about the statement), with
 * bootstrap intervals; the report keeps every statement's log-probabilities and margin.
 */
import { formatInterval } from '../../eval/format.ts';
import { statementMetrics } from '../../eval/statement-accuracy.ts';
import type { StatementScore } from '../../model/statement-score.ts';
import { numberOption, parseOptions, required } from '../args.ts';
import { modelKind, openDecoder } from '../decoder.ts';
import { DEFAULT_STATEMENT_BATCH, STATEMENT_FILE_USAGE, STATEMENT_PROMPT_OPTIONS, STATEMENT_PROMPT_USAGE, scoreStatementRows, statementPromptOf } from '../decoder-statements.ts';
import { UsageError } from '../errors.ts';
import { checkOutputPath, writeOutputFile } from '../output.ts';
import { readStatementFile } from '../statement-file.ts';

export const summary = 'zero-shot accuracy of a decoder LLM on true/false statements (answer log-probabilities)';

const USAGE = `usage: qlora-lab score --model <dir|hub-id> --statements FILE --out report.json [options]
  --model <dir|org/name[@revision]>  decoder LLM folder or Hugging Face repo id (required)
  --base nf4|f32                      frozen base precision (default nf4)
${STATEMENT_FILE_USAGE}
${STATEMENT_PROMPT_USAGE}
  --batch-size N                      statements per GPU batch (default ${DEFAULT_STATEMENT_BATCH})
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
      ...STATEMENT_PROMPT_OPTIONS,
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
  const prompt = statementPromptOf(values);
  const rows = await readStatementFile(required(values, 'statements', USAGE));
  const batchSize = numberOption(values, 'batch-size', DEFAULT_STATEMENT_BATCH, (n) => Number.isInteger(n) && n > 0);
  const bootstrap = { resamples: numberOption(values, 'resamples', 1000, (n) => Number.isInteger(n) && n > 0), seed: numberOption(values, 'seed', 0, Number.isInteger) };
  if ((await modelKind(model)) === 'encoder') throw new UsageError(`--model ${model} is not a decoder LLM (config.json names no Llama-family architecture); statements are scored by a decoder's answer log-probabilities`);

  const cli = await openDecoder(values, (values.adapter as string[] | undefined) ?? []);
  let scores: StatementScore[];
  try {
    scores = await scoreStatementRows(cli, model, prompt, rows, batchSize);
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
