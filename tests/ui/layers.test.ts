/**
 * The page's boundaries: GPU work and stored runs belong to the engine worker (src/app), so nothing
 * the page loads opens IndexedDB's run store or creates an engine; the engine holds no CPU random stream.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|svelte)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

/** Imports that are loaded at run time (type-only imports are erased). */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*import\s+(?!type\b)[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]);
}

describe('layers', () => {
  it('the page imports no run store, no IndexedDB and no engine: it asks the worker', () => {
    const offending = sources('src/ui').flatMap((file) =>
      runtimeImports(file)
        .filter((spec) => /run-store|\/app\/session|engine\/engine|^idb$/.test(spec))
        .map((spec) => `${file}: ${spec}`),
    );
    expect(offending).toEqual([]);
    expect(sources('src/ui').filter((file) => /createEngine|indexedDB\.open|openDB\(/.test(readFileSync(file, 'utf8')))).toEqual([]);
  });

  it('the engine keeps only the counter hash its shaders mirror; the CPU stream is data/rng.ts', () => {
    expect(sources('src/engine').filter((file) => /class Rng\b/.test(readFileSync(file, 'utf8')))).toEqual([]);
  });
});
