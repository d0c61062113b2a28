/** `qlora-lab eval`: before/after metrics (base vs base + adapters) on labelled pairs, with bootstrap intervals. */
import { evaluateBeforeAfter } from '../../eval/before-after.ts';
import { evalPairsFromRows, retrievalFromPairs } from '../../eval/eval-set.ts';
import { formatBeforeAfterTable } from '../../eval/format.ts';
import type { Embedder } from '../../eval/types.ts';
import { numberOption, parseOptions, required } from '../args.ts';
import { ENCODER_OPTIONS, ENCODER_USAGE, openEncoder } from '../encoder.ts';
import { UsageError } from '../errors.ts';
import { checkOutputPath, writeOutputFile } from '../output.ts';
import { PAIR_OPTIONS, PAIR_USAGE, pairOptionsOf, readPairFile } from '../pair-file.ts';

export const summary = 'before/after metrics of adapters on labelled pairs (separation, AUROC, probe, retrieval...)';

const USAGE = `usage: qlora-lab eval --model <dir|hub-id> --adapter <dir> --pairs pairs.csv --out report.json [options]
${ENCODER_USAGE}
  --adapter <dir>   PEFT adapter (repeat to stack); without one, base and "adapted" are the same model
  --pairs FILE      labelled pairs: text_a, text_b, label (1 similar / 0 different) and optionally a
                    category column naming similar / different / negation
  --resamples N     bootstrap resamples for the 95% intervals (default 1000)
  --seed N          bootstrap and split seed (default 0)
${PAIR_USAGE}`;

export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(
    args,
    { ...ENCODER_OPTIONS, ...PAIR_OPTIONS, adapter: { type: 'string', multiple: true }, pairs: { type: 'string' }, out: { type: 'string' }, resamples: { type: 'string' }, seed: { type: 'string' } },
    USAGE,
  );
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'file');
  const data = await readPairFile(required(values, 'pairs', USAGE), pairOptionsOf(values));
  if (data.layout !== 'labelled') throw new UsageError('--pairs must be labelled pairs (text_a, text_b, label[, category]), not (anchor, positive) rows');
  const pairs = evalPairsFromRows(data.examples.map((e) => ({ textA: e.textA, textB: e.textB, label: e.label, group: e.group })));
  const cli = await openEncoder(values, (values.adapter as string[] | undefined) ?? []);
  const { adapters } = cli;
  const embedWith =
    (useAdapters: boolean): Embedder =>
    async (texts, role) => {
      cli.bert.adapters = useAdapters ? adapters : [];
      return cli.encoder.embed(texts, { prompt: cli.encoder.prompt(role) });
    };
  const result = await evaluateBeforeAfter(embedWith(false), embedWith(true), { pairs, retrieval: retrievalFromPairs(pairs) }, {
    resamples: numberOption(values, 'resamples', 1000, (n) => Number.isInteger(n) && n > 0),
    seed: numberOption(values, 'seed', 0, Number.isInteger),
    onProgress: (done, total) => process.stderr.write(`\rembedded ${done}/${total}`),
  });
  process.stderr.write('\n');
  console.log(formatBeforeAfterTable(result));
  await writeOutputFile(out, `${JSON.stringify(result, null, 2)}\n`);
  cli.engine.destroy();
}
