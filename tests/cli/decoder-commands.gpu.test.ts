/**
 * `qlora-lab embed` and `qlora-lab score` on the tiny decoder folder: what they write equals the
 * library's embeddings and statement scores for the same options, and decoder-specific mistakes
 * are refused by name.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type DecoderPooling, embedDecoderTexts } from '../../src/model/decoder-embed.ts';
import { generateTokens, stopTokensOf } from '../../src/model/decoder-generate.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { loraConfigOf } from '../../src/model/peft-files.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { DecoderModel } from '../../src/model/decoder.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { defaultStatementPrompt, encodeStatement } from '../../src/model/statement-prompt.ts';
import { scoreStatements } from '../../src/model/statement-score.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/numeric.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writeTinyDecoder, writeTinyDecoderAdapter } from '../helpers/tiny-decoder.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'qlora-lab.js');
const cli = (args: string[]) => run('node', [BIN, ...args], { env: { ...process.env, QLORA_LAB_CACHE: tempDir('qll-cache-') } });

const TEXTS = ['the heart', 'a longer text about the heart and its valves', 'is'];
const STATEMENTS: [string, boolean][] = [
  ['TP53 is associated with sarcoma', true],
  ['A is associated with B', false],
  ['APOE is associated with dementia', true],
  ['XYZ is associated with nothing', false],
];

async function openTiny(dir: string) {
  const files = await openDecoderModel(localDirSource(dir));
  return { files, model: await DecoderModel.create(await gpuEngine(), files.config, files.weights, { quantization: 'f32' }) };
}

/** A float32 .npy's shape and values. */
function readNpy(path: string): { shape: string; data: Float32Array } {
  const bytes = readFileSync(path);
  const headerLength = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + headerLength).toString();
  const body = bytes.subarray(10 + headerLength);
  return { shape: /'shape': \(([^)]*)\)/.exec(header)![1], data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)) };
}

describe('qlora-lab embed with a decoder', () => {
  it('writes the library embeddings for --pooling mean and last, and refuses encoder-only options', async () => {
    const dir = tempDir('qll-dec-');
    const model = writeTinyDecoder(dir, { seed: 2 });
    const input = join(dir, 'texts.txt');
    writeFileSync(input, `${TEXTS.join('\n')}\n`);
    const tiny = await openTiny(model);
    for (const [pooling, normalize] of [['mean', false], ['last', true]] as [DecoderPooling, boolean][]) {
      const out = join(dir, `${pooling}.npy`);
      const { stderr } = await cli(['embed', '--model', model, '--input', input, '--out', out, '--base', 'f32', '--pooling', pooling, ...(normalize ? ['--normalize'] : []), '--batch-size', '2']);
      expect(stderr).toContain(`decoder embeddings: ${pooling} pooling of the last hidden states${normalize ? ', L2-normalised' : ''}`);
      const npy = readNpy(out);
      expect(npy.shape).toBe('3, 32');
      const expected = await embedDecoderTexts(tiny.model, tiny.files.tokenizer, TEXTS, { pooling, normalize });
      expectClose(npy.data, expected.flatMap((e) => Array.from(e)), { atol: 1e-5, rtol: 0 }, pooling);
    }
    tiny.model.destroy();
    const embed = (extra: string[]) => cli(['embed', '--model', model, '--input', input, '--out', join(dir, 'x.npy'), ...extra]);
    await expect(embed(['--pooling', 'cls'])).rejects.toMatchObject({ stderr: expect.stringContaining('--pooling for a decoder must be mean or last, got cls') });
    await expect(embed(['--role', 'query'])).rejects.toMatchObject({ stderr: expect.stringContaining('--role does not apply to a decoder model') });
  });
});

describe('qlora-lab score', () => {
  it('prints zero-shot accuracy with intervals and reports the library margins', async () => {
    const dir = tempDir('qll-score-');
    const model = writeTinyDecoder(dir, { seed: 2 });
    const file = join(dir, 'statements.tsv');
    writeFileSync(file, `statement\tlabel\n${STATEMENTS.map(([s, l]) => `${s}\t${l}`).join('\n')}\n`);
    const out = join(dir, 'report.json');
    const { stdout } = await cli(['score', '--model', model, '--statements', file, '--out', out, '--base', 'f32', '--batch-size', '3', '--resamples', '100']);
    expect(stdout).toMatch(/^zero-shot accuracy [\d.]+ \[[\d.]+, [\d.]+\] on 4 statements \(2 true\), AUROC of the margin [\d.]+ \[[\d.]+, [\d.]+\]/);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.prompt).toEqual(defaultStatementPrompt());

    const tiny = await openTiny(model);
    const encoded = STATEMENTS.map(([s], i) => encodeStatement(tiny.files.tokenizer, defaultStatementPrompt(), s, i));
    const scores = await scoreStatements(tiny.model, encoded, { padId: tiny.files.tokenizer.padId });
    tiny.model.destroy();
    expectClose(
      report.statements.map((s: { margin: number }) => s.margin),
      scores.map((s) => s.margin),
      { atol: 1e-5, rtol: 0 },
      'margins',
    );
    const right = scores.filter((s, i) => s.margin > 0 === STATEMENTS[i][1]).length;
    expect(report.metrics.accuracy.value).toBeCloseTo(right / 4, 12);

    writeFileSync(file, 'A is B\tmaybe\n');
    await expect(cli(['score', '--model', model, '--statements', file, '--out', out])).rejects.toMatchObject({ stderr: expect.stringContaining(`${file}:1: label "maybe" is not true/false, yes/no or 1/0`) });
    await expect(cli(['score', '--model', model, '--statements', file, '--out', out, '--template', 'no placeholder'])).rejects.toMatchObject({
      stderr: expect.stringContaining('statement prompt template must contain {statement}'),
    });
  });
});

describe('decoder commands with --adapter', () => {
  it('embed, score and generate run the model with the adapter folder on it, as the library does', async () => {
    const dir = tempDir('qll-dec-adapter-');
    const model = writeTinyDecoder(dir, { seed: 3 });
    const tiny = await openTiny(model);
    const { config } = tiny.files;
    const adapterDir = join(dir, 'adapter');
    const adapter = writeTinyDecoderAdapter(adapterDir, config);

    const input = join(dir, 'texts.txt');
    writeFileSync(input, `${TEXTS.join('\n')}\n`);
    const out = join(dir, 'adapted.npy');
    await cli(['embed', '--model', model, '--input', input, '--out', out, '--base', 'f32', '--adapter', adapterDir]);
    const plain = await embedDecoderTexts(tiny.model, tiny.files.tokenizer, TEXTS, { pooling: 'mean', normalize: false });
    tiny.model.adapters = [createDecoderAdapter(tiny.model.engine, config, loraConfigOf(adapter), adapter.tensors, false)];
    const adapted = await embedDecoderTexts(tiny.model, tiny.files.tokenizer, TEXTS, { pooling: 'mean', normalize: false });
    const flat = (e: Float32Array[]) => e.flatMap((v) => Array.from(v));
    expectClose(readNpy(out).data, flat(adapted), { atol: 1e-5, rtol: 0 }, 'embeddings with the adapter');
    expect(Math.max(...flat(adapted).map((v, i) => Math.abs(v - flat(plain)[i])))).toBeGreaterThan(1e-3);

    const statements = join(dir, 'statements.tsv');
    writeFileSync(statements, STATEMENTS.map(([s, label]) => `${s}\t${label}`).join('\n'));
    const report = join(dir, 'report.json');
    await cli(['score', '--model', model, '--statements', statements, '--out', report, '--base', 'f32', '--adapter', adapterDir]);
    const encoded = STATEMENTS.map(([s], i) => encodeStatement(tiny.files.tokenizer, defaultStatementPrompt(), s, i));
    const scores = await scoreStatements(tiny.model, encoded, { padId: tiny.files.tokenizer.padId });
    const margins = (JSON.parse(readFileSync(report, 'utf8')).statements as { margin: number }[]).map((s) => s.margin);
    expectClose(margins, scores.map((s) => s.margin), { atol: 1e-4, rtol: 0 }, 'margins with the adapter');

    const prompt = 'the heart';
    const ids: number[] = [];
    for await (const id of generateTokens(tiny.model, tiny.files.tokenizer.encode(prompt), { maxNewTokens: 5, stopTokenIds: stopTokensOf(config, tiny.files.tokenizer) })) ids.push(id);
    const { stdout } = await cli(['generate', '--model', model, '--prompt', prompt, '--max-new-tokens', '5', '--base', 'f32', '--adapter', adapterDir]);
    expect(stdout.trimEnd()).toBe(tiny.files.tokenizer.decode(ids, { skipSpecialTokens: true }).trimEnd());
    tiny.model.destroy();
  });
});
