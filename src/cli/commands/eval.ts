/**
 * `qlora-lab eval`: before/after metrics (base vs base + adapters) on labelled pairs, with bootstrap
 * intervals; for a decoder LLM the pairs are embedded by the decoder, labelled statements add its
 * zero-shot accuracy before and after, as `score` measures it, and texts its perplexity; --stack
 * adapters stay under both sides (a domain adapter, with and without the task adapter on it).
 */
import { type BeforeAfterResult, beforeAfterResult, evaluateBeforeAfter } from '../../eval/before-after.ts';
import { evalPairsFromRows, retrievalFromPairs } from '../../eval/eval-set.ts';
import { formatBeforeAfterTable } from '../../eval/format.ts';
import { type TextLoss, perplexityComparison } from '../../eval/perplexity.ts';
import { statementComparisons } from '../../eval/statement-accuracy.ts';
import type { EvalPair, Embedder } from '../../eval/types.ts';
import { numberOption, parseOptions, required } from '../args.ts';
import { modelKind } from '../decoder.ts';
import { DECODER_EMBED_USAGE } from '../decoder-embed.ts';
import { PERPLEXITY_MAX_LENGTH, openDecoderEval } from '../decoder-eval.ts';
import { STATEMENT_FILE_USAGE, STATEMENT_PROMPT_OPTIONS, STATEMENT_PROMPT_USAGE } from '../decoder-statements.ts';
import { ENCODER_OPTIONS, ENCODER_USAGE, openEncoder } from '../encoder.ts';
import { UsageError } from '../errors.ts';
import { checkOutputPath, writeOutputFile } from '../output.ts';
import { PAIR_OPTIONS, PAIR_USAGE, pairOptionsOf, readPairFile } from '../pair-file.ts';
import { NOTES_OPTIONS, NOTES_USAGE, notesSplitOf } from '../note-files.ts';
import { readStatementFile } from '../statement-file.ts';
import { readTextLines } from '../text-lines.ts';

export const summary = 'before/after metrics of adapters on labelled pairs (separation, AUROC, probe, retrieval...); decoders: also statement accuracy and perplexity';

const USAGE = `usage: qlora-lab eval --model <dir|hub-id> --adapter <dir> --pairs pairs.csv --out report.json [options]
${ENCODER_USAGE}
  --adapter <dir>   PEFT adapter (repeat to stack); without one, base and "adapted" are the same model
  --pairs FILE      labelled pairs: text_a, text_b, label (1 similar / 0 different) and optionally a
                    category column naming similar / different / negation
  --resamples N     bootstrap resamples for the 95% intervals (default 1000)
  --seed N          bootstrap and split seed (default 0)
${PAIR_USAGE}
${DECODER_EMBED_USAGE}
  A decoder takes --pairs, --statements, --texts or several; statements add its zero-shot accuracy and
  the AUROC of its answer margin before and after, as qlora-lab score measures them, texts its perplexity:
${STATEMENT_FILE_USAGE}
${STATEMENT_PROMPT_USAGE}
  --texts FILE                        held-out texts, one a line: perplexity = exp(mean next-token loss
                                      over all their predicted tokens), interval by texts; a text longer
                                      than --max-length (default ${PERPLEXITY_MAX_LENGTH}) is cut into several sequences
  --stack <dir>                       a frozen adapter under --adapter, on in both columns (repeatable,
                                      in order): "Base" is the model with the stack, "Adapted" adds --adapter
  Instead of --texts, the held-out side of a notes folder, as train --notes split it:
${NOTES_USAGE}`;

/** Options that only a decoder's statements use: refused for an encoder, and without --statements. */
const STATEMENT_ONLY = ['statements', 'template', 'chat', 'answer-true', 'answer-false'] as const;
/** Options for decoders only, with why. */
const DECODER_ONLY: Record<string, string> = {
  texts: "perplexity is a decoder's next-token loss",
  notes: "perplexity is a decoder's next-token loss",
  'held-out': "it splits --notes, for a decoder's perplexity",
  'held-out-seed': "it splits --notes, for a decoder's perplexity",
  stack: 'adapters under --adapter are stacked for decoders; for an encoder, give every folder as --adapter',
};
/** Options of the pairs and their embeddings: refused for a decoder evaluated on statements alone. */
const EMBEDDING_ONLY = ['pooling', 'normalize', 'no-normalize', 'max-length', 'prompt-query', 'prompt-passage', 'labels', 'score-scale'] as const;

/** What eval measures a model by: its embeddings, and a decoder's statement scores. */
interface EvalModel {
  embedWith(adapted: boolean): Embedder;
  scoreWith?(adapted: boolean): Promise<{ margin: number }[]>;
  lossesWith?(adapted: boolean): Promise<TextLoss[]>;
  details: Record<string, unknown>;
  destroy(): void;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(
    args,
    { ...ENCODER_OPTIONS, ...PAIR_OPTIONS, ...STATEMENT_PROMPT_OPTIONS, adapter: { type: 'string', multiple: true }, stack: { type: 'string', multiple: true }, ...NOTES_OPTIONS, pairs: { type: 'string' }, statements: { type: 'string' }, texts: { type: 'string' }, out: { type: 'string' }, resamples: { type: 'string' }, seed: { type: 'string' } },
    USAGE,
  );
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'file');
  // Without --model the encoder path says it is required, after the output and pairs are checked.
  const decoder = typeof values.model === 'string' && values.model !== '' && (await modelKind(values.model)) === 'decoder';
  checkApplicable(values, decoder);
  const pairs = values.pairs === undefined && decoder ? undefined : await readEvalPairs(required(values, 'pairs', USAGE), values);
  const statements = values.statements === undefined ? undefined : await readStatementFile(values.statements);
  const held = decoder ? await perplexityTexts(values) : undefined;
  const texts = held?.texts;
  const bootstrap = { resamples: numberOption(values, 'resamples', 1000, (n) => Number.isInteger(n) && n > 0), seed: numberOption(values, 'seed', 0, Number.isInteger) };

  const model: EvalModel = decoder ? await openDecoderEval(values, { embeds: pairs !== undefined, statements, texts }) : await openEncoderEval(values);
  let result: BeforeAfterResult;
  let scored: Record<string, unknown> = {};
  try {
    result = pairs ? await evaluatePairs(model, pairs, bootstrap) : beforeAfterResult([], [], bootstrap);
    if (statements && model.scoreWith) {
      const base = await model.scoreWith(false);
      const adapted = await model.scoreWith(true);
      const labels = statements.map((s) => s.label);
      result.metrics.push(...statementComparisons(base.map((s) => s.margin), adapted.map((s) => s.margin), labels, bootstrap));
      scored = { statements: statements.map((s, i) => ({ ...s, base: base[i], adapted: adapted[i] })) };
    }
    if (texts && model.lossesWith) {
      const base = await model.lossesWith(false);
      const adapted = await model.lossesWith(true);
      result.metrics.push(perplexityComparison(base, adapted, bootstrap));
      // Per text (a held-out note named): its predicted tokens and the sums of their losses (nats), base and adapted.
      scored = { ...scored, texts: base.map((b, i) => ({ ...(held?.documents ? { document: held.documents[i] } : {}), tokens: b.tokens, base_loss: b.loss, adapted_loss: adapted[i].loss })) };
    }
  } finally {
    model.destroy();
  }
  console.log(formatBeforeAfterTable(result));
  await writeOutputFile(out, `${JSON.stringify({ ...result, ...model.details, ...scored }, null, 2)}\n`);
}

/** Refuse the options that mean nothing for this model and these inputs, naming why. */
function checkApplicable(values: Record<string, unknown>, decoder: boolean): void {
  const given = (names: readonly string[]) => names.find((name) => values[name] !== undefined && values[name] !== false);
  if (!decoder) {
    const name = given(STATEMENT_ONLY);
    if (name) throw new UsageError(`--${name} applies to a decoder LLM --model only (statements are scored by a decoder's answer log-probabilities); ${String(values.model)} is not one`);
    const other = given(Object.keys(DECODER_ONLY));
    if (other) throw new UsageError(`--${other} applies to a decoder LLM --model only (${DECODER_ONLY[other]}); ${String(values.model)} is not one`);
    return;
  }
  if (values.pairs === undefined && values.statements === undefined && values.texts === undefined && values.notes === undefined) throw new UsageError(`--pairs, --statements, --texts or --notes is required for a decoder LLM\n\n${USAGE}`);
  const statementOption = values.statements === undefined && given(STATEMENT_ONLY);
  if (statementOption) throw new UsageError(`--${statementOption} applies to --statements, which is not given`);
  // --max-length also sets the perplexity texts' sequences.
  const perplexity = values.texts !== undefined || values.notes !== undefined;
  const embeddingOption = values.pairs === undefined && given(EMBEDDING_ONLY.filter((name) => !(name === 'max-length' && perplexity)));
  if (embeddingOption) throw new UsageError(`--${embeddingOption} applies to --pairs (read and embedded), which is not given`);
}

/** The texts a decoder's perplexity is measured on: --texts' lines, or the held-out notes of --notes (whole documents, named). */
async function perplexityTexts(values: Record<string, unknown>): Promise<{ texts: string[]; documents?: string[] } | undefined> {
  const notes = await notesSplitOf(values, 'texts');
  if (notes) {
    if (notes.heldOut.length === 0) throw new UsageError('--held-out 0 holds no notes out, so there is no perplexity to measure');
    const documents = notes.heldOut.map((d) => d.name);
    process.stderr.write(`held-out notes: ${documents.join(', ')}\n`);
    return { texts: notes.heldOut.map((d) => d.text), documents };
  }
  return values.texts === undefined ? undefined : { texts: await readTextLines('texts', values.texts as string) };
}

async function readEvalPairs(path: string, values: Record<string, unknown>): Promise<EvalPair[]> {
  const data = await readPairFile(path, pairOptionsOf(values));
  if (data.layout !== 'labelled') throw new UsageError('--pairs must be labelled pairs (text_a, text_b, label[, category]), not (anchor, positive) rows');
  return evalPairsFromRows(data.examples.map((e) => ({ textA: e.textA, textB: e.textB, label: e.label, group: e.group })));
}

async function evaluatePairs(model: EvalModel, pairs: EvalPair[], bootstrap: { resamples: number; seed: number }): Promise<BeforeAfterResult> {
  const result = await evaluateBeforeAfter(model.embedWith(false), model.embedWith(true), { pairs, retrieval: retrievalFromPairs(pairs) }, {
    ...bootstrap,
    onProgress: (done, total) => process.stderr.write(`\rembedded ${done}/${total}`),
  });
  process.stderr.write('\n');
  return result;
}

async function openEncoderEval(values: Record<string, unknown>): Promise<EvalModel> {
  const cli = await openEncoder(values, (values.adapter as string[] | undefined) ?? []);
  return {
    embedWith: (adapted) => async (texts, role) => {
      cli.bert.adapters = adapted ? cli.adapters : [];
      return cli.encoder.embed(texts, { prompt: cli.encoder.prompt(role) });
    },
    details: {},
    destroy: () => cli.engine.destroy(),
  };
}
