/**
 * The CLI on the RoBERTa, XLM-RoBERTa and DistilBERT fixture folders: embed works on each, and an
 * adapter trained on the DistilBERT base is written under DistilBERT's PEFT names.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadModelFiles } from '../../src/model/checkpoint.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { readPeftAdapter } from '../../src/model/peft-files.ts';
import { parseSafetensors, readSafetensorsHeader } from '../../src/model/safetensors.ts';
import { FAMILY_FIXTURES, fixtureModelDir } from '../helpers/fixtures.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'qlora-lab.js');
const cli = (args: string[]) => run('node', [BIN, ...args], { env: { ...process.env, QLORA_LAB_CACHE: tempDir('qll-cache-') } });

/** The rows of a float32 .npy matrix. */
function npyRows(path: string): Float32Array[] {
  const npy = readFileSync(path);
  const headerLength = npy.readUInt16LE(8);
  const [rows, cols] = /'shape': \((\d+), (\d+)\)/.exec(npy.subarray(10, 10 + headerLength).toString())!.slice(1).map(Number);
  const values = new Float32Array(npy.buffer.slice(npy.byteOffset + 10 + headerLength, npy.byteOffset + npy.length));
  return Array.from({ length: rows }, (_, r) => values.subarray(r * cols, (r + 1) * cols));
}

describe.each(FAMILY_FIXTURES)('qlora-lab embed on the %s fixture', (family) => {
  it('writes one normalised embedding per text', async () => {
    const dir = tempDir('qll-family-');
    const texts = join(dir, 'texts.txt');
    writeFileSync(texts, 'The patient was treated with insulin.\nChronic kidney disease\nx\n');
    const out = join(dir, 'emb.npy');
    await cli(['embed', '--model', fixtureModelDir(family), '--input', texts, '--out', out, '--base', 'f32']);
    const rows = npyRows(out);
    const { config } = await loadModelFiles(localDirSource(fixtureModelDir(family)));
    expect(rows.map((r) => r.length)).toEqual([config.hiddenSize, config.hiddenSize, config.hiddenSize]);
    for (const row of rows) expect(Math.abs(Math.hypot(...row) - 1)).toBeLessThan(1e-5);
    expect(Math.hypot(...rows[0].map((v, i) => v - rows[1][i]))).toBeGreaterThan(1e-3);
  });
});

describe('qlora-lab train on DistilBERT', () => {
  it('writes the adapter under DistilBERT\'s module names and target_modules, which embed and check-grads read', async () => {
    const dir = tempDir('qll-distil-');
    const model = fixtureModelDir('distilbert');
    const words = ['heart', 'liver', 'kidney', 'brain', 'lung', 'blood', 'tumor', 'cancer'];
    const data = join(dir, 'pairs.jsonl');
    writeFileSync(data, words.map((w) => JSON.stringify({ anchor: `${w} disease`, positive: `chronic ${w} disease in patients` })).join('\n'));
    const adapterDir = join(dir, 'adapter');
    await cli(['train', '--model', model, '--data', data, '--out', adapterDir, '--batch-size', '4', '--r', '4', '--alpha', '8', '--targets', 'q_lin,value', '--max-length', '16']);
    const configJson = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'));
    expect(configJson.target_modules).toEqual(['q_lin', 'v_lin']);
    const weights = new Uint8Array(readFileSync(join(adapterDir, 'adapter_model.safetensors')));
    const names = readSafetensorsHeader(weights).entries.map((e) => e.name);
    expect(names).toHaveLength(3 * 2 * 2); // 3 layers × q_lin, v_lin × A, B
    expect(names.every((n) => /^base_model\.model\.transformer\.layer\.[0-2]\.attention\.[qv]_lin\.lora_[AB]\.weight$/.test(n))).toBe(true);
    const { config } = await loadModelFiles(localDirSource(model));
    expect(readPeftAdapter({ 'adapter_config.json': JSON.stringify(configJson), 'adapter_model.safetensors': weights }, config).tensors.size).toBe(12);

    const texts = join(dir, 'texts.txt');
    writeFileSync(texts, 'heart disease\nliver cancer\n');
    await cli(['embed', '--model', model, '--input', texts, '--out', join(dir, 'emb.npy'), '--adapter', adapterDir, '--base', 'f32']);
    expect(npyRows(join(dir, 'emb.npy'))).toHaveLength(2);
    const grads = join(dir, 'grads.safetensors');
    await cli(['check-grads', '--model', model, '--data', data, '--adapter', adapterDir, '--out', grads, '--batch-size', '4', '--base', 'f32']);
    expect(parseSafetensors(new Uint8Array(readFileSync(grads))).tensors.has('base_model.model.transformer.layer.2.attention.v_lin.lora_B.weight')).toBe(true);
  });
});
