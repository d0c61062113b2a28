/**
 * Which base model a run uses, and where the app reads its files from: the bundled demo from the
 * app's own site, a Hub repo at a revision (cached in the browser's Cache Storage, so a second load
 * needs no network), or a folder the user picked (the CLI's --model is cli/model-source.ts).
 */
import { fileMapSource, type ModelFileSource } from './file-source.ts';
import { bundledSource, cacheStorageCache, hubSource } from './hub.ts';

/** A local folder is named and fingerprinted; the user picks it again. */
export type ModelRef =
  | { kind: 'bundled'; id: string }
  | { kind: 'hub'; id: string; revision: string }
  | { kind: 'local'; id: string; fingerprint: string };

/**
 * The files of `ref`. `localFiles` are the picked folder's (not kept between visits); `siteUrl` is
 * where the app is served, the bundled models being under its models/ folder.
 */
export function modelRefSource(ref: ModelRef, localFiles: ReadonlyMap<string, Blob> | undefined, siteUrl: string): ModelFileSource {
  if (ref.kind === 'hub') return hubSource(ref.id, { revision: ref.revision, cache: typeof caches === 'undefined' ? null : cacheStorageCache() });
  if (ref.kind === 'local') {
    if (!localFiles) throw new Error(`Pick the folder of ${ref.id} again: local files are not kept between visits.`);
    return fileMapSource(localFiles, ref.id);
  }
  return bundledSource(new URL(`models/${encodeURIComponent(ref.id)}/`, siteUrl), ref.id);
}
