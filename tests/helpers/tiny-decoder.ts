/**
 * A tiny Llama-layout decoder folder for CLI and end-to-end tests (src/model/tiny-decoder.ts, the
 * bundled demo decoder's maker), written into a directory. Made here because tests cannot download a real model.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TinyDecoderOptions, tinyDecoderFiles } from '../../src/model/tiny-decoder.ts';

/** Write the tiny decoder's folder into `dir` (which must exist); returns `dir`. */
export function writeTinyDecoder(dir: string, options: TinyDecoderOptions = {}): string {
  for (const [name, content] of Object.entries(tinyDecoderFiles(options))) writeFileSync(join(dir, name), content);
  return dir;
}
