/** Model files fetched from a plain URL folder (the benchmark's local static server). */
import type { ModelFileSource } from '../../src/model/file-source.ts';

export function urlFolderSource(folderUrl: string): ModelFileSource {
  const base = folderUrl.endsWith('/') ? folderUrl : `${folderUrl}/`;
  return {
    kind: 'local',
    id: base,
    async read(path) {
      const response = await fetch(base + path);
      if (response.status === 404) return null;
      if (!response.ok) throw new Error(`fetching ${base + path} failed: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}
