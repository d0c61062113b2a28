import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { makeDemoDecoder } from '../../scripts/make-demo-decoder.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { fileMapSource } from '../../src/model/file-source.ts';

const FOLDER = 'public/models/demo-decoder';
const asBlobs = (files: Record<string, string | Uint8Array>) =>
  new Map(Object.entries(files).map(([name, content]) => [name, new Blob([content as string | Uint8Array<ArrayBuffer>])]));

describe('demo decoder script', () => {
  it('makes the committed public/models/demo-decoder byte for byte', () => {
    const files = makeDemoDecoder(1);
    expect(readdirSync(FOLDER).sort()).toEqual(Object.keys(files).sort());
    for (const [name, content] of Object.entries(files)) {
      const expected = typeof content === 'string' ? new TextEncoder().encode(content) : content;
      expect(new Uint8Array(readFileSync(`${FOLDER}/${name}`)), `${FOLDER}/${name} differs from the script's; run scripts/make-demo-decoder.ts`).toEqual(expected);
    }
  });

  it('is a loadable Llama decoder with a chat template, labelled as a random-weights smoke test, under 300 kB', async () => {
    const files = makeDemoDecoder(1);
    const model = await openDecoderModel(fileMapSource(asBlobs(files), 'demo-decoder'));
    expect(model.config).toMatchObject({ family: 'llama', hiddenSize: 32, numHiddenLayers: 2, vocabSize: 272 });
    expect(model.tokenizer.hasChatTemplate).toBe(true);
    expect(model.tokenizer.decode(model.tokenizer.encode('the heart', { specialTokens: false }))).toBe('the heart');
    expect(files['README.md']).toMatch(/random-weights smoke-test model[\s\S]*\*\*This is not a trained model\.\*\*/);
    const size = Object.values(files).reduce((n, c) => n + (typeof c === 'string' ? c.length : c.byteLength), 0);
    expect(size).toBeLessThan(300e3);
  });

  it('is deterministic for a seed and changes with it', () => {
    expect(makeDemoDecoder(7)).toEqual(makeDemoDecoder(7));
    expect(makeDemoDecoder(7)['model.safetensors']).not.toEqual(makeDemoDecoder(8)['model.safetensors']);
  });
});
