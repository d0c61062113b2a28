/**
 * Random BERTs of a benchmark shape, made once by the fixture exporter (Debian's torch) and cached
 * in the OS temp folder: an HF model folder (config.json, model.safetensors, vocab.txt,
 * tokenizer_config.json) plus onnx/model.onnx of the very same weights, for transformers.js.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BenchShape } from './shapes.ts';

const PYTHON = '/usr/bin/python3';
const EXPORTER = fileURLToPath(new URL('../../tests/fixtures/make_fixtures.py', import.meta.url));
/** Written last: a folder without it is an interrupted export and is made again. */
const MARKER = 'bench-model.json';

export function benchModelsRoot(): string {
  return join(tmpdir(), 'qlora-lab-bench');
}

/** Folder name of a shape's random model under benchModelsRoot(). */
export function benchModelName(shape: BenchShape, seed: number): string {
  return `${shape.key}-seed${seed}`;
}

/** The model folder for `shape` with weights from `seed`, exporting it first if it is not cached. */
export async function ensureBenchModel(shape: BenchShape, seed: number, log: (line: string) => void): Promise<string> {
  const dir = join(benchModelsRoot(), benchModelName(shape, seed));
  const marker = JSON.stringify({ config: shape.config, seed });
  if (existsSync(join(dir, MARKER)) && (await readFile(join(dir, MARKER), 'utf8')) === marker) return dir;
  if (!existsSync(PYTHON)) throw new Error(`making the benchmark models needs ${PYTHON} with Debian's python3-torch (apt-get install python3-torch)`);
  const partial = `${dir}.partial`;
  await rm(partial, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  const configPath = join(partial, 'shape.json');
  await writeFile(configPath, JSON.stringify(shape.config));
  log(`exporting a random ${shape.label} model (seed ${seed}) to ${dir} with torch (~30 s)…`);
  try {
    await promisify(execFile)(PYTHON, [EXPORTER, 'export-onnx', '--config', configPath, '--out', partial, '--seed', String(seed)], { maxBuffer: 16 << 20 });
  } catch (e) {
    const { stderr } = e as { stderr?: string };
    throw new Error(`the fixture exporter failed for ${shape.label}: ${(stderr ?? String(e)).trim().split('\n').slice(-3).join(' / ')}`);
  }
  await rm(configPath);
  await writeFile(join(partial, MARKER), marker);
  await rename(partial, dir);
  return dir;
}
