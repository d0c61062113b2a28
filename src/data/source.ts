/**
 * Where ingested bytes come from (a dropped File, a Blob, a URL) and how they are opened: gzip is
 * recognised by its magic bytes, not the file name, and inflated with DecompressionStream; the
 * compressed bytes read are counted for progress; a truncated or corrupt gzip stream surfaces as a
 * TruncatedInputError with a message a user can act on.
 */
import { TruncatedInputError } from './errors.ts';
import { peek } from './text.ts';

export interface IngestSource {
  readonly name: string;
  /** Size in bytes as stored (compressed size for .gz); 0 when unknown. */
  readonly size: number;
  /** File modification time in ms; 0 when unknown. Used to check that a resume reads the same file. */
  readonly lastModified: number;
  open(): Promise<ReadableStream<Uint8Array>>;
}

export function blobSource(blob: Blob, name?: string): IngestSource {
  const file = blob as Partial<File>;
  return {
    name: name ?? file.name ?? 'data',
    size: blob.size,
    lastModified: file.lastModified ?? 0,
    open: async () => blob.stream() as ReadableStream<Uint8Array>,
  };
}

/** A file served over HTTP(S): the app's bundled demo sets, or a benchmark's generated file. */
export function urlSource(url: string, size = 0, name = decodeURIComponent(url.split('/').pop()?.split('?')[0] || 'data')): IngestSource {
  return {
    name,
    size,
    lastModified: 0,
    async open() {
      const response = await fetch(url);
      if (!response.ok || !response.body) throw new TruncatedInputError(`Could not read ${url}: HTTP ${response.status} ${response.statusText}`);
      return response.body as ReadableStream<Uint8Array>;
    },
  };
}

export interface OpenedText {
  /** Plain bytes (inflated when the source is gzip). */
  stream: ReadableStream<Uint8Array>;
  gzip: boolean;
}

/** Open a source for reading as text bytes; `onBytes` is told how many source bytes each read consumed. */
export async function openText(source: IngestSource, onBytes: (n: number) => void = () => {}): Promise<OpenedText> {
  const { head, stream } = await peek(await source.open(), 2);
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  const reader = stream.getReader();
  const counted = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      onBytes(value.length);
      controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  if (!gzip) return { stream: inPieces(counted), gzip };
  const inflated = counted.pipeThrough(new DecompressionStream('gzip') as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
  return { stream: inPieces(withReadErrors(inflated, source.name)), gzip };
}

/**
 * Cut chunks into pieces of at most MAX_PIECE bytes. Browsers hand out Blob chunks of a megabyte or
 * more; a batch is committed at a chunk boundary, so this keeps batches (and resume points) near
 * the requested size.
 */
const MAX_PIECE = 64 * 1024;

function inPieces(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        for (let at = 0; at < chunk.length; at += MAX_PIECE) controller.enqueue(chunk.subarray(at, at + MAX_PIECE));
      },
    }),
  );
}

/** Re-raise inflate errors as TruncatedInputError naming the file. */
function withReadErrors(stream: ReadableStream<Uint8Array>, name: string): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (e) {
        controller.error(
          new TruncatedInputError(
            `${name}: the gzip data ends early or is corrupt (${(e as Error).message || e}). ` +
              'This usually means an incomplete download; download the file again.',
          ),
        );
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
}
