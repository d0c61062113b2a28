/** The qlora-lab CLI end to end on the tiny fixture model: train → embed → check-grads → merge, and its errors. */
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
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
    const train = await cli(['train', '--model', model, '--data', data, '--out', adapterDir, '--batch-size', '4', '--epochs', '1', '--r', '4', '--alpha', '8', '--targets', 'query,value', '--max-length', '16', '--seed', '3', '--micro-batch', '3', '--checkpoint-every-layers', '1']);
    // 4 pairs = 8 sequences, run 3 at a time (exact, gradient-cached), every layer checkpointed.
    expect(train.stderr).toMatch(/memory plan: 3 sequences per pass \(exact, gradient-cached\), every layer checkpointed, f16 storage; estimate [\d.]+ [KMG]i?B of a 4\.0 GiB budget/);
    expect(train.stderr).toMatch(/GPU memory after the first step: peak [\d.]+ [KMG]i?B, estimated [\d.]+ [KMG]i?B/);
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
    const settings = JSON.parse(readFileSync(join(adapterDir, 'qlora_lab.json'), 'utf8'));
    expect(settings).toMatchObject({ base_model: model, pooling: 'mean', normalize: true, max_seq_length: 16, train_args: expect.arrayContaining(['--seed', '3', resolve(data)]) });
    // The run exported from its adapter folder: the 12 rows it fed, in its order.
    const exported = join(dir, 'exported');
    await cli(['export-run', '--from', adapterDir, '--out', exported]);
    expect(readFileSync(join(exported, 'train.jsonl'), 'utf8').trim().split('\n')).toHaveLength(12);

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
    await expect(cli(['train', '--model', model, '--data', pairFile(tempDir('qll-cli-')), '--out', '/tmp/x', '--batch-size', '4', '--micro-batch', '2.5'])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/--micro-batch got 2.5, which is not valid/),
    });
    await expect(cli(['nope'])).rejects.toMatchObject({ code: 2 });
  });
});

describe('qlora-lab train checkpoints', () => {
  // 3 epochs of 3 steps, a checkpoint every 2: resumes cross an epoch boundary and its reshuffle.
  const trainArgs = (data: string, out: string, extra: string[] = []) => [
    'train', '--model', model, '--data', data, '--out', out, '--batch-size', '4', '--epochs', '3', '--r', '4', '--alpha', '8',
    '--max-length', '16', '--seed', '3', '--checkpoint-every', '2', ...extra,
  ];
  const adapterBytes = (dir: string) => readFileSync(join(dir, 'adapter_model.safetensors'));

  // The uninterrupted run, trained once by the first test that needs it: the resumed runs must end
  // with its bytes, and it is the good adapter a diverged run must not replace. Its folder outlives
  // that test (tempDir's would not), so the file removes it.
  const wholeDir = mkdtempSync(join(tmpdir(), 'qll-whole-'));
  afterAll(() => rmSync(wholeDir, { recursive: true, force: true }));
  let wholeRun: Promise<string> | undefined;
  const trainedWhole = () => (wholeRun ??= cli(trainArgs(pairFile(wholeDir), join(wholeDir, 'adapter'))).then(() => join(wholeDir, 'adapter')));

  /** Start a training process and send `signal` as soon as it reports the checkpoint of step 2. */
  function interruptAfterCheckpoint(args: string[], signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string }> {
    const child = spawn('node', [BIN, ...args], { env: { ...process.env, QLORA_LAB_CACHE: tempDir('qll-cache-') } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/checkpoint at step 2 written/.test(stderr) && !child.killed) child.kill(signal);
    });
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  }

  it('resumes after kill -9 and after SIGTERM with the same final adapter bytes as an uninterrupted run', async () => {
    const dir = tempDir('qll-resume-');
    const data = pairFile(dir);
    const whole = await trainedWhole();
    expect(existsSync(join(whole, 'checkpoint.safetensors'))).toBe(false); // a finished run drops its checkpoint

    const killed = join(dir, 'killed');
    const k = await interruptAfterCheckpoint(trainArgs(data, killed), 'SIGKILL');
    expect(k.code).toBeNull();
    expect(existsSync(join(killed, 'adapter_model.safetensors'))).toBe(false);
    expect(existsSync(join(killed, 'checkpoint.safetensors'))).toBe(true);
    const resumed = await cli(['train', '--resume', killed]);
    expect(resumed.stderr).toMatch(/resuming at step [2-8] of 9/);
    expect(adapterBytes(killed).equals(adapterBytes(whole))).toBe(true);

    const stopped = join(dir, 'stopped');
    const t = await interruptAfterCheckpoint(trainArgs(data, stopped), 'SIGTERM');
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/interrupted at step \d of 9; continue with: qlora-lab train --resume /);
    // A moved folder resumes where it is now.
    const moved = join(dir, 'moved');
    cpSync(stopped, moved, { recursive: true });
    await cli(['train', '--resume', moved]);
    expect(adapterBytes(moved).equals(adapterBytes(whole))).toBe(true);

    await expect(cli(['train', '--resume', moved, '--lr', '1'])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/give no other option/) });
    await expect(cli(['train', '--resume', whole])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/there is no checkpoint.safetensors/) });
    writeFileSync(join(stopped, 'x'), '');
    writeFileSync(data, `${readFileSync(data, 'utf8')}{"anchor": "new", "positive": "row"}\n`);
    await expect(cli(['train', '--resume', stopped])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/has changed since the run started/) });
  }, 600_000);

  it('never replaces a good adapter with a diverged one', async () => {
    const dir = tempDir('qll-diverge-');
    const data = pairFile(dir);
    const out = join(dir, 'adapter');
    cpSync(await trainedWhole(), out, { recursive: true }); // trained on the same rows (pairFile) with the same arguments
    const good = adapterBytes(out);
    // At a learning rate of 1e9 the loss stays finite (embeddings are normalised) while the weights explode.
    const diverged = cli(trainArgs(data, out, ['--lr', '1e9']));
    await expect(diverged).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/Training diverged at step 2: the update of encoder\.layer\.\d\.attention\.self\.(query|value) is .* the size of the frozen weight.*nothing was written/s),
    });
    expect(adapterBytes(out).equals(good)).toBe(true);
  }, 300_000);
});
