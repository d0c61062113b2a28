/**
 * Where model files come from. A source answers "give me the bytes of `config.json`" (or null when
 * it has no such file) and reports progress while it reads; the loader does not care whether the
 * bytes come from the Hub, a cache, a folder on disk or files the user dropped into the page.
 */

export interface FileProgress {
  file: string;
  loaded: number;
  /** Bytes expected, when the source knows (a download without Content-Length does not). */
  total: number | null;
  /** True when the bytes came from a cache instead of the network. */
  cached: boolean;
  /** True on the last report for this file. */
  done: boolean;
}

export type OnProgress = (progress: FileProgress) => void;

export interface ModelFileSource {
  readonly kind: 'hub' | 'local' | 'bundled';
  /** Hub repo id, folder path, or a name for dropped files. */
  readonly id: string;
  readonly revision?: string;
  /** The commit a Hub revision resolved to (Hub sources only). */
  commit?(): Promise<string>;
  /** The file's bytes, or null when the source has no file at `path`. */
  read(path: string, onProgress?: OnProgress): Promise<Uint8Array | null>;
  /**
   * Sources that can read part of a file: its size (null when absent) and bytes [begin, end). A large
   * checkpoint is then read tensor by tensor instead of whole.
   */
  ranges?: RangeReader;
}

export interface RangeReader {
  size(path: string): Promise<number | null>;
  read(path: string, begin: number, end: number): Promise<Uint8Array>;
}

/**
 * Drain a byte stream into one array, reporting each chunk. With a known total the buffer is
 * allocated once (a 1.3 GB checkpoint is not held twice); otherwise it grows by doubling.
 */
export async function readStream(
  stream: ReadableStream<Uint8Array>,
  total: number | null,
  report: (loaded: number, done: boolean) => void,
): Promise<Uint8Array> {
  let buffer = new Uint8Array(total ?? 1 << 20);
  let loaded = 0;
  const reader = stream.getReader();
  report(0, false);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.byteLength > buffer.byteLength) {
      const grown = new Uint8Array(Math.max(2 * buffer.byteLength, loaded + value.byteLength));
      grown.set(buffer.subarray(0, loaded));
      buffer = grown;
    }
    buffer.set(value, loaded);
    loaded += value.byteLength;
    report(loaded, false);
  }
  report(loaded, true);
  return loaded === buffer.byteLength ? buffer : buffer.slice(0, loaded);
}

/**
 * Files the user picked or dropped in the browser, by path inside the model folder
 * (`config.json`, `model.safetensors`, ...).
 */
export function fileMapSource(files: ReadonlyMap<string, Blob>, id = 'local files'): ModelFileSource {
  return {
    kind: 'local',
    id,
    async read(path, onProgress) {
      const blob = files.get(path);
      if (!blob) return null;
      return readStream(blob.stream(), blob.size, (loaded, done) => onProgress?.({ file: path, loaded, total: blob.size, cached: false, done }));
    },
    ranges: {
      async size(path) {
        return files.get(path)?.size ?? null;
      },
      async read(path, begin, end) {
        const blob = files.get(path);
        if (!blob) throw new Error(`${id}: no file ${path}`);
        if (!(0 <= begin && begin <= end && end <= blob.size)) throw new Error(`${id}/${path}: bytes [${begin}, ${end}) are outside its ${blob.size} bytes`);
        return new Uint8Array(await blob.slice(begin, end).arrayBuffer());
      },
    },
  };
}

/**
 * A folder picked with `<input type="file" webkitdirectory>` arrives as Files whose
 * webkitRelativePath starts with the folder's own name; key them by the path inside it.
 */
export function fileListToMap(files: ArrayLike<File>): Map<string, File> {
  const map = new Map<string, File>();
  for (const file of Array.from(files)) {
    const relative = file.webkitRelativePath || file.name;
    const slash = relative.indexOf('/');
    map.set(file.webkitRelativePath && slash >= 0 ? relative.slice(slash + 1) : relative, file);
  }
  return map;
}
