/**
 * `qlora-lab train --objective causal-lm` on decoders: the loss falls over epochs of a few texts and
 * the PEFT adapter folder it writes reads back for the model. On Phi-3 (fused qkv_proj, gate_up_proj)
 * the parts' shared A stays shared through AdamW, or the adapter could not be written in PEFT's names.
 * Phi-3 trains with every layer checkpointed (--checkpoint-every-layers 1); a bad interval, options of
 * the other objective and a bad statement line are refused. The step is planned into --memory-budget;
 * micro-batches and checkpointing leave the step unchanged.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readDecoderAdapterDir } from '../../src/cli/decoder.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { FIXTURES } from '../helpers/fixtures.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'qlora-lab.js');

describe.each([
  ['llama', ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], []],
  ['phi3', ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'], ['--checkpoint-every-layers', '1']],
])('train on the %s decoder', (name, targets, checkpointing) => {
  it('lowers the causal-LM loss and writes a PEFT adapter on every linear', async () => {
    const fixture = join(FIXTURES, 'decoder', 'check_grads', name);
    const out = join(tempDir('qll-dtrain-'), 'adapter');
    const { stderr } = await run('node', [BIN, 'train', '--model', join(fixture, 'model'), '--data', join(fixture, 'texts.txt'), '--objective', 'causal-lm', '--out', out,
      '--base', 'f32', '--r', '4', '--alpha', '8', '--epochs', '6', '--batch-size', '4', '--max-length', '16', '--lr', '0.01', '--warmup-ratio', '0', '--seed', '5', ...checkpointing]);
    const steps = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(steps.length).toBe(6);
    expect(steps.every((s) => Number.isFinite(s.loss) && s.tokens > 0)).toBe(true);
    expect(steps[5].loss).toBeLessThan(steps[0].loss - 0.05);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, target_modules: targets });
    const base = await openDecoderModel(localDirSource(join(fixture, 'model')));
    const adapter = await readDecoderAdapterDir(out, base.config);
    const b = adapter.tensors.get('model.layers.1.self_attn.k_proj.lora_B')!;
    expect(b.data.some((v) => v !== 0)).toBe(true);
  });
});

it('refuses a checkpoint interval that is not a whole number ≥ 0', async () => {
  const fixture = join(FIXTURES, 'decoder', 'check_grads', 'llama');
  const out = join(tempDir('qll-dtrain-'), 'adapter');
  const args = [BIN, 'train', '--model', join(fixture, 'model'), '--data', join(fixture, 'texts.txt'), '--objective', 'causal-lm', '--out', out, '--checkpoint-every-layers', '1.5'];
  await expect(run('node', args)).rejects.toMatchObject({ stderr: expect.stringMatching(/checkpoint-every-layers/) });
});

it('plans the step into the memory budget; micro-batches and checkpointing give the same steps', async () => {
  const fixture = join(FIXTURES, 'decoder', 'check_grads', 'llama');
  const train = async (layout: string[]) => {
    const out = join(tempDir('qll-dtrain-'), 'adapter');
    const { stderr } = await run('node', [BIN, 'train', '--model', join(fixture, 'model'), '--data', join(fixture, 'texts.txt'), '--objective', 'causal-lm', '--out', out,
      '--base', 'f32', '--r', '4', '--epochs', '2', '--batch-size', '4', '--max-length', '16', '--lr', '0.01', '--warmup-ratio', '0', '--lora-dropout', '0', '--seed', '5', ...layout]);
    return { stderr, losses: stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l).loss as number) };
  };
  const whole = await train([]);
  expect(whole.stderr).toMatch(/memory plan: the whole step in one micro-batch, no checkpointing, f32 embeddings and head; estimate [\d.]+ KiB of a 4\.0 GiB budget/);
  const split = await train(['--micro-batch', '2', '--checkpoint-every-layers', '1', '--memory-budget', '0.5']);
  expect(split.stderr).toMatch(/memory plan: 2 micro-batches of 2 sequences \(gradient accumulation\), every layer checkpointed, .* of a 512\.0 MiB budget/);
  expect(split.losses.length).toBe(whole.losses.length);
  split.losses.forEach((loss, i) => expect(Math.abs(loss - whole.losses[i])).toBeLessThanOrEqual(1e-5 * Math.abs(whole.losses[i])));
});

it('refuses options of the other objective and a bad statement line, before the GPU starts', async () => {
  const fixture = join(FIXTURES, 'decoder', 'check_grads', 'llama');
  const dir = tempDir('qll-dtrain-');
  const statements = join(dir, 'statements.tsv');
  writeFileSync(statements, 'TP53 is associated with sarcoma\ttrue\nA is associated with B\tmaybe\n');
  const train = (extra: string[]) => run('node', [BIN, 'train', '--model', join(fixture, 'model'), '--out', join(dir, 'adapter'), ...extra]);
  const refusals: [string[], string][] = [
    [['--data', statements, '--objective', 'statements', '--max-length', '16'], '--max-length does not apply to --objective statements'],
    [['--data', join(fixture, 'texts.txt'), '--objective', 'causal-lm', '--chat'], '--chat does not apply to --objective causal-lm'],
    [['--data', statements, '--objective', 'statements'], `${statements}:2: label "maybe" is not true/false, yes/no or 1/0`],
    [['--data', statements, '--objective', 'ranking'], '--objective ranking is not one for decoders: give causal-lm or statements'],
  ];
  for (const [extra, message] of refusals) {
    const failure = await train(extra).then(
      () => expect.fail(`train ${extra.join(' ')} succeeded`),
      (e: { stderr: string }) => e,
    );
    expect(failure.stderr).toContain(message);
    expect(failure.stderr).not.toContain('GPU:');
  }
});
