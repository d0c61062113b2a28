/** Byte streams for data tests: text cut at chosen or seeded random byte positions, and whole files. */
import { openAsBlob } from 'node:fs';
import { Rng } from '../../src/data/rng.ts';

export const CTD_CURATED = new URL('../../../shared/data/ctd/CTD_curated_genes_diseases.csv', import.meta.url).pathname;

export function streamOf(pieces: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < pieces.length) controller.enqueue(pieces[i++]);
      else controller.close();
    },
  });
}

/** `bytes` cut into pieces at seeded random positions (mid-character cuts included). */
export function randomPieces(bytes: Uint8Array, rng: Rng, maxPiece = 64): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + rng.int(maxPiece);
    pieces.push(bytes.slice(at, at + n));
    at += n;
  }
  return pieces;
}

export function textStream(text: string, rng?: Rng, maxPiece?: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return streamOf(rng ? randomPieces(bytes, rng, maxPiece) : [bytes]);
}

export async function fileStream(path: string): Promise<ReadableStream<Uint8Array>> {
  return (await openAsBlob(path)).stream() as ReadableStream<Uint8Array>;
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
