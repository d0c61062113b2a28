/**
 * `qlora-lab embed` on sentence-transformers folders (tests/fixtures/sentence) with no pooling,
 * normalisation, length or prompt option: the folder's choices apply and the embeddings are
 * PyTorch's (sentence-transformers' encode, encode_query, encode_document) within 1e-4.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { expectClose } from '../helpers/numeric.ts';
import { SENTENCE_FIXTURES, type SentenceFixture, sentenceModelDir, sentenceReference } from '../helpers/sentence-fixtures.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'qlora-lab.js');
const cli = (args: string[]) => run('node', [BIN, ...args], { env: { ...process.env, QLORA_LAB_CACHE: tempDir('qll-cache-') } });

/** A float32 .npy matrix as rows. */
function readNpy(path: string): number[][] {
  const npy = readFileSync(path);
  const headerLength = npy.readUInt16LE(8);
  const header = npy.subarray(10, 10 + headerLength).toString();
  const [rows, cols] = /'shape': \((\d+), (\d+)\)/.exec(header)!.slice(1).map(Number);
  const values = new Float32Array(npy.buffer.slice(npy.byteOffset + 10 + headerLength, npy.byteOffset + npy.length));
  return Array.from({ length: rows }, (_, r) => Array.from(values.subarray(r * cols, (r + 1) * cols)));
}

async function embed(name: SentenceFixture, extra: string[] = []) {
  const dir = tempDir('qll-st-');
  const input = join(dir, 'texts.txt');
  writeFileSync(input, `${sentenceReference(name).texts.join('\n')}\n`);
  const out = join(dir, 'emb.npy');
  const { stderr } = await cli(['embed', '--model', sentenceModelDir(name), '--input', input, '--out', out, '--base', 'f32', ...extra]);
  return { stderr, rows: readNpy(out) };
}

const ORIGINS: Record<SentenceFixture, RegExp> = {
  bge: /pooling cls \(1_Pooling\/config\.json\), L2-normalised \(modules\.json\), max length 512 \(sentence_bert_config\.json\), query prompt none \(default\), passage prompt none \(default\); texts are cut at 64 tokens/,
  minilm: /pooling mean \(1_Pooling\/config\.json\), L2-normalised \(modules\.json\), max length 256 \(sentence_bert_config\.json\)/,
  e5: /pooling mean \(1_Pooling\/config\.json\), not normalised \(modules\.json\), max length 512 \(sentence_bert_config\.json\), query prompt "query: " \(config_sentence_transformers\.json\), passage prompt "passage: "/,
  gte: /pooling mean \(1_Pooling\/config\.json\), not normalised \(modules\.json\), max length 512 \(sentence_bert_config\.json\)/,
  instructor: /pooling weighted-mean \(1_Pooling\/config\.json\), L2-normalised \(modules\.json\), max length 12 \(sentence_bert_config\.json\), query prompt "Represent the question: "/,
};

/** The runs beyond the plain one: models with prompts, by role (instructor's plain run already has its default prompt, the query one). */
const ROLE_RUNS: [SentenceFixture, 'query' | 'passage'][] = [
  ['e5', 'query'],
  ['e5', 'passage'],
  ['instructor', 'passage'],
];

describe('qlora-lab embed on sentence-transformers folders, no embedding options', () => {
  it.each(SENTENCE_FIXTURES)('%s: prints the folder settings and gives PyTorch embeddings (≤ 1e-4)', async (name) => {
    const { stderr, rows } = await embed(name);
    expect(stderr).toMatch(ORIGINS[name]);
    const expected = sentenceReference(name).roles.none.embeddings;
    expect(rows.length).toBe(expected.length);
    rows.forEach((row, i) => expectClose(row, expected[i], { atol: 1e-4, rtol: 0 }, `${name} text ${i}`));
  }, 120_000);

  it.each(ROLE_RUNS)('%s --role %s: the role prompt, as encode_query / encode_document (≤ 1e-4)', async (name, role) => {
    const { stderr, rows } = await embed(name, ['--role', role]);
    const reference = sentenceReference(name).roles[role];
    expect(stderr).toContain(`prompt ${JSON.stringify(reference.prompt)} (${role})`);
    rows.forEach((row, i) => expectClose(row, reference.embeddings[i], { atol: 1e-4, rtol: 0 }, `${name} ${role} text ${i}`));
  }, 120_000);

  it('explicit options override the folder and say so', async () => {
    const { stderr, rows } = await embed('bge', ['--pooling', 'max', '--no-normalize', '--max-length', '3', '--prompt-query', 'q: ']);
    expect(stderr).toMatch(/pooling max \(--pooling\), not normalised \(--normalize\/--no-normalize\), max length 3 \(--max-length\), query prompt "q: " \(--prompt-query\)/);
    expect(rows.some((row) => Math.abs(Math.hypot(...row) - 1) > 1e-3)).toBe(true);
  }, 120_000);

  it('refuses contradictory or unknown embedding options before loading anything', async () => {
    const dir = tempDir('qll-st-');
    writeFileSync(join(dir, 'texts.txt'), 'heart\n');
    const args = ['embed', '--model', sentenceModelDir('e5'), '--input', join(dir, 'texts.txt'), '--out', join(dir, 'x.npy')];
    await expect(cli([...args, '--normalize', '--no-normalize'])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/--normalize and --no-normalize contradict each other/) });
    await expect(cli([...args, '--role', 'document'])).rejects.toMatchObject({ stderr: expect.stringMatching(/--role must be query or passage, got document/) });
    await expect(cli([...args, '--pooling', 'median'])).rejects.toMatchObject({ stderr: expect.stringMatching(/--pooling must be one of cls, mean, max, mean-sqrt-len, weighted-mean, last-token, got median/) });
  });
});
