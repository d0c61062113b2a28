/**
 * A tiny Llama-layout decoder folder for CLI and end-to-end tests (src/model/tiny-decoder.ts, the
 * bundled demo decoder's maker), written into a directory, and an adapter for it. Made here because
 * tests cannot download a real model.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../src/data/rng.ts';
import type { DecoderConfig } from '../../src/model/decoder-config.ts';
import { initDecoderLora } from '../../src/model/decoder-lora-layout.ts';
import { writeDecoderPeftAdapter } from '../../src/model/decoder-peft.ts';
import type { PeftAdapter, PeftAdapterFiles } from '../../src/model/peft-files.ts';
import { type TinyDecoderOptions, tinyDecoderFiles } from '../../src/model/tiny-decoder.ts';

export { tinyDecoderConfigJson } from '../../src/model/tiny-decoder.ts';

/** Write the tiny decoder's folder into `dir` (which must exist); returns `dir`. */
export function writeTinyDecoder(dir: string, options: TinyDecoderOptions = {}): string {
  for (const [name, content] of Object.entries(tinyDecoderFiles(options))) writeFileSync(join(dir, name), content);
  return dir;
}

/**
 * A LoRA adapter for `config`'s decoder (rank 4 on q_proj, v_proj, down_proj), its B large enough
 * to move every output: PEFT's init leaves B zero, which would change nothing.
 */
export function tinyDecoderAdapter(config: DecoderConfig, seed = 7): PeftAdapter {
  const init = initDecoderLora(config, 4, ['q_proj', 'v_proj', 'down_proj'], seed);
  const rng = new Rng(seed + 1);
  for (const [name, t] of init.tensors) if (name.endsWith('lora_B')) t.data.forEach((_, i) => (t.data[i] = rng.normal() * 0.5));
  const lora = { r: 4, loraAlpha: 8, loraDropout: 0, targetModules: init.targetModules, useRslora: false, baseModelNameOrPath: 'tiny' };
  return { config: lora, tensors: init.tensors };
}

/** The adapter as PEFT's two files. */
export function tinyDecoderAdapterFiles(config: DecoderConfig, seed = 7): PeftAdapterFiles {
  return writeDecoderPeftAdapter(tinyDecoderAdapter(config, seed), config);
}

/** The adapter written into the folder `dir` (created); returns the adapter as written. */
export function writeTinyDecoderAdapter(dir: string, config: DecoderConfig, seed = 7): PeftAdapter {
  mkdirSync(dir);
  for (const [name, bytes] of Object.entries(tinyDecoderAdapterFiles(config, seed))) writeFileSync(join(dir, name), bytes);
  return tinyDecoderAdapter(config, seed);
}
