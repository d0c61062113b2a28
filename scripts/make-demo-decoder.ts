/**
 * Makes the bundled demo decoder: a tiny Llama-layout LLM with RANDOM weights (a smoke test for the
 * decoder pipeline, not a trained model) with a byte-level tokenizer and a chat template, from
 * src/model/tiny-decoder.ts (the tests' decoder folders come from the same maker). Same seed → the same bytes.
 *
 *   node --import tsx scripts/make-demo-decoder.ts [--out public/models/demo-decoder] [--seed 1]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDecoderConfig } from '../src/model/decoder-config.ts';
import { tinyDecoderConfigJson, tinyDecoderFiles } from '../src/model/tiny-decoder.ts';

/** All files of the demo decoder folder, by name. */
export function makeDemoDecoder(seed: number): Record<string, string | Uint8Array> {
  return { ...tinyDecoderFiles({ seed }), 'README.md': readme(seed) };
}

function readme(seed: number): string {
  const c = parseDecoderConfig(tinyDecoderConfigJson({ seed }));
  return `# demo-decoder: a random-weights smoke-test model

**This is not a trained model.** Its weights are random (N(0, 0.02²), norms 1, seed ${seed}), so the
text it generates is noise and no figure obtained with it says anything about a real model. It exists
so the app and the tests can run the decoder pipeline (load, quantise, generate, compare with an
adapter) offline and in seconds. For real work pick a Hub model (SmolLM2, Qwen2.5, Llama 3.2...).

- Architecture: ${c.architectures[0]}, hidden ${c.hiddenSize}, ${c.numHiddenLayers} layers, ${c.numAttentionHeads} attention heads over ${c.numKeyValueHeads} key/value heads, intermediate ${c.intermediateSize}, ${c.maxPositionEmbeddings} positions.
- Tokenizer: byte-level BPE (every byte is a token, a few merges), ${c.vocabSize} ids, Llama 3's special tokens and a shortened Llama 3 chat template.
- Made by \`scripts/make-demo-decoder.ts\`; rerunning it with the same seed rewrites the same bytes.
`;
}

function main(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string', default: 'public/models/demo-decoder' }, seed: { type: 'string', default: '1' } } });
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got ${values.seed}`);
  const files = makeDemoDecoder(seed);
  mkdirSync(values.out, { recursive: true });
  let total = 0;
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(values.out, name), content);
    total += typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength;
  }
  console.error(`wrote ${Object.keys(files).length} files (${(total / 1e3).toFixed(0)} kB) to ${values.out}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main(process.argv.slice(2));
