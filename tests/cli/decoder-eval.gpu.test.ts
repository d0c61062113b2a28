/**
 * `qlora-lab eval` with a decoder --model on the tiny decoder folder: the figures it reports are the
 * library's (separation by hand, every metric by evaluateBeforeAfter on the library's decoder
 * embeddings, statement accuracy by statementMetrics on scoreStatements' margins), without and with
 * an adapter; options, adapters (--adapter, --stack) and perplexity texts that do not fit are
 * refused by name before anything is written.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type BeforeAfterResult, evaluateBeforeAfter } from '../../src/eval/before-after.ts';
import { evalPairsFromRows, retrievalFromPairs } from '../../src/eval/eval-set.ts';
import { statementMetrics } from '../../src/eval/statement-accuracy.ts';
import type { EvalPair } from '../../src/eval/types.ts';
import { dot, unit } from '../../src/eval/vectors.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { parseDecoderConfig } from '../../src/model/decoder-config.ts';
import { embedDecoderTexts } from '../../src/model/decoder-embed.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { DecoderModel } from '../../src/model/decoder.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { type PeftAdapter, loraConfigOf } from '../../src/model/peft-files.ts';
import { defaultStatementPrompt, encodeStatement } from '../../src/model/statement-prompt.ts';
import { scoreStatements } from '../../src/model/statement-score.ts';
import { fixtureModelDir } from '../helpers/fixtures.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { tinyDecoderConfigJson, writeTinyDecoder, writeTinyDecoderAdapter } from '../helpers/tiny-decoder.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'qlora-lab.js');
const cli = (args: string[]) => run('node', [BIN, ...args], { env: { ...process.env, QLORA_LAB_CACHE: tempDir('qll-cache-') } });

const PAIR_ROWS: [string, string, 0 | 1][] = [
  ['heart failure', 'weak heart', 1],
  ['atrial fibrillation', 'irregular beat', 1],
  ['angina', 'chest pain', 1],
  ['high blood pressure', 'hypertension', 1],
  ['heart failure', 'broken wrist', 0],
  ['angina', 'skin rash', 0],
  ['atrial fibrillation', 'hay fever', 0],
  ['hypertension', 'tooth decay', 0],
];
const STATEMENTS: [string, boolean][] = [
  ['TP53 is associated with sarcoma', true],
  ['A is associated with B', false],
  ['APOE is associated with dementia', true],
  ['XYZ is associated with nothing', false],
];
const BOOTSTRAP = { resamples: 50, seed: 0 };

interface Inputs {
  model: string;
  pairs: string;
  statements: string;
}

function writeInputs(dir: string): Inputs {
  const pairs = join(dir, 'pairs.csv');
  writeFileSync(pairs, `text_a,text_b,label\n${PAIR_ROWS.map((r) => r.join(',')).join('\n')}\n`);
  const statements = join(dir, 'statements.tsv');
  writeFileSync(statements, `${STATEMENTS.map(([s, l]) => `${s}\t${l}`).join('\n')}\n`);
  return { model: writeTinyDecoder(dir, { seed: 3 }), pairs, statements };
}

type Report = BeforeAfterResult & { embedding: unknown; prompt: unknown; statements: { statement: string; label: boolean; base: { margin: number }; adapted: { margin: number } }[] };

function metric(report: BeforeAfterResult, key: string) {
  const m = report.metrics.find((x) => x.key === key);
  if (!m) throw new Error(`the report has no ${key}`);
  return m;
}

/** What the library gives for the same files: evaluateBeforeAfter on its embeddings, statement margins before and after. */
async function libraryFigures(dir: string, adapter: PeftAdapter | null) {
  const files = await openDecoderModel(localDirSource(dir));
  const model = await DecoderModel.create(await gpuEngine(), files.config, files.weights, { quantization: 'f32' });
  const pairs: EvalPair[] = evalPairsFromRows(PAIR_ROWS.map(([textA, textB, label]) => ({ textA, textB, label })));
  const texts = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
  const adapters = adapter ? [createDecoderAdapter(model.engine, files.config, loraConfigOf(adapter), adapter.tensors, false)] : [];
  const embeddings: Map<string, Float32Array>[] = [];
  const margins: number[][] = [];
  const encoded = STATEMENTS.map(([s], i) => encodeStatement(files.tokenizer, defaultStatementPrompt(), s, i));
  for (const on of [false, true]) {
    model.adapters = on ? adapters : [];
    const vectors = await embedDecoderTexts(model, files.tokenizer, texts, { pooling: 'mean', normalize: false });
    embeddings.push(new Map(texts.map((t, i) => [t, vectors[i]])));
    margins.push((await scoreStatements(model, encoded, { padId: files.tokenizer.padId })).map((s) => s.margin));
  }
  model.destroy();
  const lookup = (table: Map<string, Float32Array>) => async (batch: string[]) => batch.map((t) => table.get(t)!);
  const result = await evaluateBeforeAfter(lookup(embeddings[0]), lookup(embeddings[1]), { pairs, retrieval: retrievalFromPairs(pairs) }, BOOTSTRAP);
  // The separation by hand: mean cosine of the similar pairs minus that of the different ones.
  const separation = embeddings.map((table) => {
    const cos = (p: EvalPair) => dot(unit(table.get(p.a)!), unit(table.get(p.b)!));
    const mean = (group: string) => pairs.filter((p) => p.group === group).reduce((s, p) => s + cos(p), 0) / 4;
    return mean('similar') - mean('different');
  });
  return { result, margins, separation };
}

describe('qlora-lab eval with a decoder', () => {
  it('reports the library figures on the decoder embeddings and statements, without and with an adapter', async () => {
    const dir = tempDir('qll-dec-eval-');
    const inputs = writeInputs(dir);
    const adapterDir = join(dir, 'adapter');
    const adapter = writeTinyDecoderAdapter(adapterDir, parseDecoderConfig(tinyDecoderConfigJson()));
    const expected = { plain: await libraryFigures(inputs.model, null), adapted: await libraryFigures(inputs.model, adapter) };
    for (const [name, adapter] of [['plain', []], ['adapted', ['--adapter', adapterDir]]] as const) {
      const out = join(dir, `${name}.json`);
      const { stdout, stderr } = await cli(['eval', '--model', inputs.model, ...adapter, '--pairs', inputs.pairs, '--statements', inputs.statements, '--out', out, '--base', 'f32', '--resamples', '50']);
      expect(stderr).toContain('decoder embeddings: mean pooling of the last hidden states');
      expect(stdout).toMatch(/Zero-shot statement accuracy \*\s+4 /);
      const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
      const { result, margins, separation } = expected[name];
      expect(report.metrics.map((m) => m.key)).toEqual([...result.metrics.map((m) => m.key), 'zero_shot_accuracy', 'zero_shot_auroc']);
      for (const want of result.metrics) {
        const got = metric(report, want.key);
        for (const side of ['base', 'adapted', 'change'] as const) {
          for (const end of ['value', 'low', 'high'] as const) expect(got[side][end], `${name} ${want.key} ${side} ${end}`).toBeCloseTo(want[side][end], 5);
        }
      }
      expect(metric(report, 'cardio_separation').base.value).toBeCloseTo(separation[0], 5);
      expect(metric(report, 'cardio_separation').adapted.value).toBeCloseTo(separation[1], 5);
      report.statements.forEach((s, i) => {
        expect(s.base.margin).toBeCloseTo(margins[0][i], 4);
        expect(s.adapted.margin).toBeCloseTo(margins[1][i], 4);
      });
      const labels = STATEMENTS.map(([, l]) => l);
      for (const [side, k] of [['base', 0], ['adapted', 1]] as const) {
        const alone = statementMetrics(margins[k], labels, BOOTSTRAP);
        expect(metric(report, 'zero_shot_accuracy')[side]).toEqual(alone.accuracy);
        expect(metric(report, 'zero_shot_auroc')[side]).toEqual(alone.auroc);
      }
      expect(report.embedding).toEqual({ pooling: 'mean', normalize: false });
      expect(report.prompt).toEqual(defaultStatementPrompt());
    }
    // Without an adapter both sides are the base; the adapter moves the separation and the margins.
    expect(expected.plain.separation[1]).toBe(expected.plain.separation[0]);
    expect(Math.abs(expected.adapted.separation[1] - expected.adapted.separation[0])).toBeGreaterThan(1e-3);
    expect(Math.max(...expected.adapted.margins[1].map((m, i) => Math.abs(m - expected.adapted.margins[0][i])))).toBeGreaterThan(1e-3);
  }, 300_000);

  it('refuses an adapter of another model and options that do not apply, and writes nothing', async () => {
    const dir = tempDir('qll-dec-eval-bad-');
    const inputs = writeInputs(dir);
    const out = join(dir, 'report.json');
    const otherAdapter = join(dir, 'adapter-3-layers');
    writeTinyDecoderAdapter(otherAdapter, parseDecoderConfig(tinyDecoderConfigJson({ layers: 3 })));
    const evaluate = (extra: string[], model = inputs.model) => cli(['eval', '--model', model, '--out', out, ...extra]);
    const texts = join(dir, 'texts.txt');
    writeFileSync(texts, 'Seen in clinic.\nNo oedema.\n');
    const notes = join(dir, 'notes');
    mkdirSync(notes);
    writeFileSync(join(notes, 'a.txt'), 'Seen in clinic.');
    writeFileSync(join(notes, 'b.txt'), 'No oedema.');
    const encoder = fixtureModelDir('tiny');
    const refusals: [string[], string, string?][] = [
      [['--pairs', inputs.pairs, '--adapter', otherAdapter], `qlora-lab eval: adapter ${otherAdapter}: `],
      [['--pairs', inputs.pairs, '--prompt-query', 'query: '], '--prompt-query does not apply to a decoder model'],
      [['--pairs', inputs.pairs, '--chat'], '--chat applies to --statements, which is not given'],
      [['--statements', inputs.statements, '--pooling', 'last'], '--pooling applies to --pairs (read and embedded), which is not given'],
      [[], '--pairs, --statements, --texts or --notes is required for a decoder LLM'],
      [['--texts', texts, '--stack', otherAdapter], `qlora-lab eval: adapter ${otherAdapter}: `],
      [['--texts', texts, '--max-length', '200'], "--max-length 200 exceeds the model's 128 positions"],
      [['--texts', join(dir, 'missing.txt')], `cannot read --texts ${join(dir, 'missing.txt')}`],
      [['--notes', notes, '--held-out', '0'], '--held-out 0 holds no notes out, so there is no perplexity to measure'],
      [['--notes', notes, '--texts', texts], 'give --texts or --notes, not both'],
      [['--pairs', inputs.pairs, '--texts', texts], `--texts applies to a decoder LLM --model only (perplexity is a decoder's next-token loss); ${encoder} is not one`, encoder],
      [['--pairs', inputs.pairs, '--stack', otherAdapter], '--stack applies to a decoder LLM --model only', encoder],
    ];
    for (const [extra, message, model] of refusals) {
      const failure = await evaluate(extra, model).then(
        () => expect.fail(`eval ${extra.join(' ')} succeeded`),
        (e: { code: number; stderr: string }) => e,
      );
      expect(failure.code, extra.join(' ')).toBe(1);
      expect(failure.stderr).toContain(message);
      expect(failure.stderr).not.toContain('GPU:');
      expect(existsSync(out)).toBe(false);
    }
    await expect(evaluate(['--pairs', inputs.pairs, '--statements', inputs.statements], encoder)).rejects.toMatchObject({
      stderr: expect.stringContaining(`--statements applies to a decoder LLM --model only (statements are scored by a decoder's answer log-probabilities); ${encoder} is not one`),
    });
    expect(existsSync(out)).toBe(false);
  }, 300_000); // thirteen CLI processes, none past its checks
});
