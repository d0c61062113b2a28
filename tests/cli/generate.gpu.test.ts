/**
 * `qlora-lab generate` on the tiny decoder folder: the streamed text is the model API's decode of
 * the same tokens (greedy; sampled with a seed, through the chat template), and bad input gets a
 * plain message.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DecoderModel } from '../../src/model/decoder.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { type GenerateOptions, generateTokens, stopTokensOf } from '../../src/model/decoder-generate.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { fixtureModelDir } from '../helpers/fixtures.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writeTinyDecoder } from '../helpers/tiny-decoder.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'qlora-lab.js');
const generate = (args: string[]) => run('node', [BIN, 'generate', ...args], { env: { ...process.env, QLORA_LAB_CACHE: tempDir('qll-cache-') } });

/** The text the model API generates for `ids`, stop token left out, as the CLI prints it. */
async function apiText(dir: string, ids: (files: Awaited<ReturnType<typeof openDecoderModel>>) => number[], options: Omit<GenerateOptions, 'stopTokenIds'>): Promise<string> {
  const files = await openDecoderModel(localDirSource(dir));
  const decoder = await DecoderModel.create(await gpuEngine(), files.config, files.weights, { quantization: 'f32' });
  const stops = stopTokensOf(files.config, files.tokenizer);
  const tokens: number[] = [];
  for await (const token of generateTokens(decoder, ids(files), { ...options, stopTokenIds: stops })) if (!stops.includes(token)) tokens.push(token);
  decoder.destroy();
  return files.tokenizer.decode(tokens, { skipSpecialTokens: true });
}

describe('qlora-lab generate', () => {
  it('prints the greedy continuation the model API generates', async () => {
    const dir = writeTinyDecoder(tempDir('qll-generate-'));
    const out = await generate(['--model', dir, '--prompt', 'the cat is', '--max-new-tokens', '6', '--base', 'f32']);
    const expected = await apiText(dir, (files) => files.tokenizer.encode('the cat is'), { maxNewTokens: 6 });
    expect(expected.length).toBeGreaterThan(0);
    expect(out.stdout).toBe(`${expected}\n`);
    expect(out.stderr).toMatch(/8 prompt tokens, \d+ generated in [\d.]+ s/);
  });

  it('samples the same text for a seed as the API does, through the chat template with --chat', async () => {
    const dir = writeTinyDecoder(tempDir('qll-generate-'));
    const args = ['--model', dir, '--prompt', 'is the cat here?', '--chat', '--max-new-tokens', '6', '--temperature', '0.8', '--top-p', '0.9', '--seed', '3', '--base', 'f32'];
    const out = await generate(args);
    const chatIds = (files: Awaited<ReturnType<typeof openDecoderModel>>) => files.tokenizer.applyChatTemplate([{ role: 'user', content: 'is the cat here?' }], { addGenerationPrompt: true }).ids;
    expect(out.stdout).toBe(`${await apiText(dir, chatIds, { maxNewTokens: 6, temperature: 0.8, topP: 0.9, seed: 3 })}\n`);
    expect(out.stdout).not.toBe(`${await apiText(dir, chatIds, { maxNewTokens: 6, temperature: 0.8, topP: 0.9, seed: 4 })}\n`);
  });

  it('refuses an encoder, bad numbers and a prompt longer than the model, with plain messages', async () => {
    const dir = writeTinyDecoder(tempDir('qll-generate-'));
    const fails = (args: string[], message: RegExp) => expect(generate(args)).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(message) });
    await fails(['--model', fixtureModelDir('tiny'), '--prompt', 'x'], /^qlora-lab generate: generate needs a decoder LLM \(config.json model_type llama, qwen2, qwen3, mistral, phi3\); .* is not one/);
    await fails(['--model', dir, '--prompt', 'x', '--temperature=-1'], /--temperature must be a number ≥ 0 \(0: greedy\), got -1/);
    await fails(['--model', dir, '--prompt', 'x', '--top-p', '0'], /--top-p must be in \(0, 1\], got 0/);
    await fails(['--model', dir, '--prompt', 'x', '--max-new-tokens', '2.5'], /--max-new-tokens must be a positive integer, got 2.5/);
    await fails(['--model', dir], /--prompt is required/);
    const long = await generate(['--model', dir, '--prompt', 'x'.repeat(200)]).catch((e: { code: number; stderr: string }) => e);
    expect(long).toMatchObject({ code: 1, stderr: expect.stringMatching(/qlora-lab generate: --prompt is 201 tokens, more than the model's 128 positions/) });
    expect((long as { stderr: string }).stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
