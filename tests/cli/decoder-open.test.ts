/** The CLI's model kind check and decoder opening, on the tiny decoder folder and the demo encoder. */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { modelKind } from '../../src/cli/decoder.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writeTinyDecoder } from '../helpers/tiny-decoder.ts';

const run = promisify(execFile);

describe('modelKind', () => {
  it('says decoder for a Llama folder and encoder for the demo BERT', async () => {
    expect(await modelKind(writeTinyDecoder(tempDir('tiny-decoder-')))).toBe('decoder');
    expect(await modelKind('public/models/demo-bert')).toBe('encoder');
  });

  it('says decoder from architectures alone, and encoder for an unknown model_type', async () => {
    const dir = tempDir('kind-');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['Qwen2ForCausalLM'] }));
    expect(await modelKind(dir)).toBe('decoder');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', architectures: ['Qwen2ForCausalLM'] }));
    expect(await modelKind(dir)).toBe('encoder');
  });

  it('says unreadable for a config.json that is not JSON, and generate reports an unreachable Hub as such', async () => {
    const dir = tempDir('kind-');
    writeFileSync(join(dir, 'config.json'), '{ not json');
    expect(await modelKind(dir)).toBe('unreadable');
    // Port 9 (discard) refuses at once: the Hub cannot be reached, which is what generate must say.
    const env = { ...process.env, HF_ENDPOINT: 'http://127.0.0.1:9', QLORA_LAB_CACHE: tempDir('hub-cache-') };
    const out = await run('node', ['bin/qlora-lab.js', 'generate', '--model', 'org/absent', '--prompt', 'hi'], { env }).catch((e: { stderr: string; code: number }) => e);
    expect('code' in out && out.code).toBe(1);
    expect(out.stderr).toContain('could not reach http://127.0.0.1:9 to look up org/absent@main');
  });
});

describe('the tiny decoder folder', () => {
  it('opens with its tokenizer: ids within the vocabulary, Llama 3 style <|begin_of_text|> first', async () => {
    const files = await openDecoderModel(localDirSource(writeTinyDecoder(tempDir('tiny-decoder-'))));
    expect(files.config.numHiddenLayers).toBe(2);
    const ids = files.tokenizer.encode('the cat is here');
    expect(ids[0]).toBe(263);
    expect(Math.max(...ids)).toBeLessThan(files.config.vocabSize);
  });
});
