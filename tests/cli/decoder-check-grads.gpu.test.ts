/**
 * `qlora-lab check-grads --objective causal-lm` against PyTorch (tests/fixtures/decoder/check_grads,
 * made by make_check_grads_fixture.py): the mean next-token loss (1e-4) and every LoRA gradient under
 * its PEFT key (1e-3 relative to each tensor's largest |gradient|), for a Llama with LoRA on every
 * linear and a Phi-3 whose adapter targets the fused qkv_proj / gate_up_proj. The adapters' config
 * has lora_dropout 0.1, which check-grads must leave off. An adapter for another model is refused.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FIXTURES, readSafetensorsFile } from '../helpers/fixtures.ts';
import { expectClose } from '../helpers/numeric.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'qlora-lab.js');
const cli = (args: string[]) => run('node', [BIN, ...args], { env: { ...process.env, QLORA_LAB_CACHE: tempDir('qll-cache-') } });
const fixture = (model: string) => join(FIXTURES, 'decoder', 'check_grads', model);

describe.each(['llama', 'phi3'])('check-grads on the %s decoder', (model) => {
  it("matches PyTorch's loss and LoRA gradients", async () => {
    const dir = fixture(model);
    const out = join(tempDir('qll-grads-'), 'grads.safetensors');
    const { stderr } = await cli(['check-grads', '--model', join(dir, 'model'), '--data', join(dir, 'texts.txt'), '--objective', 'causal-lm', '--adapter', join(dir, 'adapter'), '--out', out, '--base', 'f32', '--max-length', '16', '--batch-size', '3']);
    expect(stderr).toMatch(/over \d+ predicted tokens of 3 texts/);
    const got = readSafetensorsFile(out);
    const expected = readSafetensorsFile(join(dir, 'reference.safetensors'));
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    expect(Math.abs(got.get('loss')!.data[0] - expected.get('loss')!.data[0])).toBeLessThan(1e-4);
    for (const [key, t] of expected) {
      if (key === 'loss') continue;
      const largest = t.data.reduce((mx, v) => Math.max(mx, Math.abs(v)), 0);
      expect(largest, `${key} has a gradient`).toBeGreaterThan(0);
      expect(got.get(key)!.shape).toEqual(t.shape);
      expectClose(got.get(key)!.data, t.data, { atol: 1e-3 * largest, rtol: 0 }, key);
    }
  });
});

describe('check-grads on a decoder', () => {
  it('refuses an adapter made for another model (naming the tensor), a non-decoder objective and a length past the positions', async () => {
    const args = ['check-grads', '--model', join(fixture('llama'), 'model'), '--data', join(fixture('llama'), 'texts.txt'), '--out', join(tempDir('qll-grads-'), 'g.safetensors')];
    const wrong = cli([...args, '--objective', 'causal-lm', '--adapter', join(fixture('phi3'), 'adapter')]);
    await expect(wrong).rejects.toThrow(/adapter .*phi3.*adapter_model\.safetensors has tensors that are not LoRA weights of this llama decoder.*base_model\.model\.model\.layers\.0\.self_attn\.qkv_proj\.lora_A\.weight/s);
    await expect(cli([...args, '--objective', 'infonce', '--adapter', join(fixture('llama'), 'adapter')])).rejects.toThrow(/--objective infonce is not one for decoders: give causal-lm/);
    await expect(cli([...args, '--objective', 'causal-lm', '--adapter', join(fixture('llama'), 'adapter'), '--max-length', '999'])).rejects.toThrow(/--max-length 999 exceeds the model's 32 positions/);
  });
});
