/** The qlora-lab CLI end to end on the tiny fixture model: train → embed → check-grads → merge, and its errors. */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readPeftAdapter } from '../../src/model/peft-files.ts';
import { parseSafetensors } from '../../src/model/safetensors.ts';
import { fixtureModelDir } from '../helpers/fixtures.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'qlora-lab.js');
const model = fixtureModelDir('tiny');
const cli = (args: string[]) => run('node', [BIN, ...args], { env: { ...process.env, QLORA_LAB_CACHE: tempDir('qll-cache-') } });

const WORDS = ['heart', 'liver', 'kidney', 'brain', 'lung', 'blood', 'tumor', 'cancer', 'insulin', 'glucose', 'infection', 'protein'];

function pairFile(dir: string): string {
  const lines = WORDS.map((w, i) => JSON.stringify({ anchor: `${w} disease`, positive: `chronic ${w} disease in patients`, negatives: [`${WORDS[(i + 3) % WORDS.length]} therapy`] }));
  const path = join(dir, 'pairs.jsonl');
  writeFileSync(path, `${lines.join('\n')}\n{"anchor": "broken row"}\n`);
  return path;
}

describe('qlora-lab CLI', () => {
  it('trains an adapter, embeds with it, checks gradients and merges', async () => {
    const dir = tempDir('qll-cli-');
    const data = pairFile(dir);
    const adapterDir = join(dir, 'adapter');
    const train = await cli(['train', '--model', model, '--data', data, '--out', adapterDir, '--batch-size', '4', '--epochs', '1', '--r', '4', '--alpha', '8', '--targets', 'query,value', '--max-length', '16', '--seed', '3']);
    const steps = train.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(steps.length).toBe(3); // 12 rows / batch 4; the broken row is skipped
    expect(steps.every((s) => Number.isFinite(s.loss))).toBe(true);
    expect(train.stderr).toMatch(/:13: skipped/);
    const adapter = readPeftAdapter({
      'adapter_config.json': readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'),
      'adapter_model.safetensors': new Uint8Array(readFileSync(join(adapterDir, 'adapter_model.safetensors'))),
    });
    expect(adapter.config.r).toBe(4);
    expect(adapter.tensors.size).toBe(2 * 2 * 2); // 2 layers × query,value × A,B

    const texts = join(dir, 'texts.txt');
    writeFileSync(texts, 'heart disease\nliver cancer\n\nacute kidney infection\n');
    const out = join(dir, 'emb.npy');
    await cli(['embed', '--model', model, '--input', texts, '--out', out, '--adapter', adapterDir, '--base', 'f32']);
    const npy = readFileSync(out);
    expect(npy.subarray(1, 6).toString()).toBe('NUMPY');
    const headerLength = npy.readUInt16LE(8);
    expect(npy.subarray(10, 10 + headerLength).toString()).toContain("'shape': (3, 32)");
    const values = new Float32Array(npy.buffer.slice(npy.byteOffset + 10 + headerLength, npy.byteOffset + npy.length));
    expect(values.length).toBe(96);
    expect(Math.abs(Math.hypot(...values.subarray(0, 32)) - 1)).toBeLessThan(1e-5); // normalised

    const grads = join(dir, 'grads.safetensors');
    await cli(['check-grads', '--model', model, '--data', data, '--adapter', adapterDir, '--out', grads, '--batch-size', '4', '--base', 'f32']);
    const g = parseSafetensors(new Uint8Array(readFileSync(grads))).tensors;
    expect(Number.isFinite(g.get('loss')!.data[0])).toBe(true);
    expect(g.has('base_model.model.encoder.layer.1.attention.self.value.lora_B.weight')).toBe(true);

    const merged = join(dir, 'merged');
    await cli(['merge', '--model', model, '--adapter', adapterDir, '--out', merged]);
    const weights = parseSafetensors(new Uint8Array(readFileSync(join(merged, 'model.safetensors')))).tensors;
    expect(weights.get('encoder.layer.0.attention.self.query.weight')!.shape).toEqual([32, 32]);

    const evalPairs = join(dir, 'eval.csv');
    const rows = WORDS.slice(0, 6).map((w, i) => `${w} disease,chronic ${w} disease,1,similar\n${w} disease,${WORDS[i + 6]} therapy,0,different`);
    writeFileSync(evalPairs, `text_a,text_b,label,category\n${rows.join('\n')}\n`);
    const report = join(dir, 'report.json');
    const evaluated = await cli(['eval', '--model', model, '--adapter', adapterDir, '--pairs', evalPairs, '--out', report, '--resamples', '50', '--base', 'f32']);
    // 6 pairs a class: starred, with the small-sample warning under the table and in the report.
    expect(evaluated.stdout).toMatch(/Cardiology separation \*\s+12 /);
    expect(evaluated.stdout).toContain('* Cardiology separation: only 6 pairs in the smallest class, fewer than 10 a class');
    const result = JSON.parse(readFileSync(report, 'utf8'));
    expect(result.metrics.find((m: { key: string }) => m.key === 'cardio_separation').warning).toMatch(/^only 6 pairs/);
  }, 500_000); // five CLI processes, each compiling its pipelines

  it('fails with a clear message and a non-zero exit on bad input', async () => {
    await expect(cli(['train', '--model', model, '--out', '/tmp/x'])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/--data is required/) });
    await expect(cli(['embed', '--model', '/nonexistent/model', '--input', 'x', '--out', 'y'])).rejects.toMatchObject({ code: 1 });
    await expect(cli(['embed', '--model', model, '--input', '/nonexistent.txt', '--out', 'y'])).rejects.toMatchObject({ stderr: expect.stringMatching(/cannot read --input/) });
    await expect(cli(['nope'])).rejects.toMatchObject({ code: 2 });
  });
});
