/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON describing each
 * tensor (dtype, shape, [begin, end) byte offsets into the data that follows), then the data.
 * The reader trusts nothing in the file: every length, offset and size is checked before any typed
 * array is made, so a corrupt or hostile file gives an Error, never an out-of-bounds view.
 */
import { ELEMENT_BYTES, type ElementType, decodeToFloat32, isElementType } from './dtypes.ts';
import { type HostTensor, type StateDict, shapeSize } from './state-dict.ts';

export interface SafetensorsFile {
  tensors: StateDict;
  metadata: Record<string, string>;
}

export interface SafetensorsEntry {
  name: string;
  dtype: ElementType;
  shape: number[];
  begin: number;
  end: number;
}

/** The same cap as the reference implementation: headers are small, a huge one is an attack. */
const MAX_HEADER_BYTES = 100_000_000;
/** Types the format defines that carry no float weights we can use. */
const UNSUPPORTED_TYPES = new Set(['F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4', 'U16', 'U32', 'U64', 'C64']);

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** The JSON header's length, from a file's first 8 bytes (little-endian u64). */
export function safetensorsHeaderLength(first: Uint8Array): number {
  const view = new DataView(first.buffer, first.byteOffset, 8);
  return view.getUint32(4, true) * 2 ** 32 + view.getUint32(0, true);
}

/**
 * Parse and validate the header; returns the entries (in file order) and where the data starts.
 * `bytes` is the file, or (with fileLength, for reading by byte range) its first 8 + header-length bytes.
 */
export function readSafetensorsHeader(
  bytes: Uint8Array,
  label = 'safetensors file',
  fileLength = bytes.byteLength,
): { entries: SafetensorsEntry[]; metadata: Record<string, string>; dataStart: number } {
  const fail = (why: string): never => {
    throw new SafetensorsError(`${label}: ${why}`);
  };
  if (fileLength < 8 || bytes.byteLength < 8) fail(`${fileLength} bytes is too short for a safetensors file (8-byte header length first)`);
  const headerLength = safetensorsHeaderLength(bytes);
  if (headerLength > MAX_HEADER_BYTES) fail(`header length ${headerLength} is over the ${MAX_HEADER_BYTES}-byte limit`);
  if (headerLength > fileLength - 8) fail(`header length ${headerLength} runs past the end of the file (${fileLength} bytes)`);
  if (headerLength > bytes.byteLength - 8) fail(`header length ${headerLength}: only ${bytes.byteLength - 8} header bytes were read`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail('header is not a JSON object');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return fail('header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = fileLength - dataStart;
  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = checkMetadata(info, fail);
      continue;
    }
    entries.push(checkEntry(name, info, dataLength, fail));
  }
  // The data must be tiled exactly by the tensors: no overlaps, no holes, nothing trailing.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (let k = 0; k < sorted.length; k++) {
    const e = sorted[k];
    if (e.begin < cursor) fail(`tensor "${e.name}" bytes [${e.begin}, ${e.end}) overlap "${sorted[k - 1].name}"`);
    if (e.begin > cursor) fail(`${e.begin - cursor} bytes before tensor "${e.name}" at offset ${cursor} belong to no tensor`);
    cursor = e.end;
  }
  if (cursor !== dataLength) fail(`tensors cover ${cursor} data bytes but the file has ${dataLength} after the header`);
  return { entries, metadata, dataStart };
}

function checkMetadata(info: unknown, fail: (why: string) => never): Record<string, string> {
  if (typeof info !== 'object' || info === null || Array.isArray(info)) fail('__metadata__ must be an object of strings');
  for (const [key, value] of Object.entries(info as object)) {
    if (typeof value !== 'string') fail(`__metadata__["${key}"] must be a string, got ${JSON.stringify(value)}`);
  }
  return info as Record<string, string>;
}

function checkEntry(name: string, info: unknown, dataLength: number, fail: (why: string) => never): SafetensorsEntry {
  if (typeof info !== 'object' || info === null || Array.isArray(info)) fail(`tensor "${name}": entry must be an object`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string') return fail(`tensor "${name}": dtype missing`);
  if (!isElementType(dtype)) {
    return fail(`tensor "${name}": dtype ${JSON.stringify(dtype)} ${UNSUPPORTED_TYPES.has(dtype) ? 'is not supported' : 'is unknown'}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    return fail(`tensor "${name}": shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    return fail(`tensor "${name}": data_offsets must be [begin, end] byte offsets, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`tensor "${name}": data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataLength) fail(`tensor "${name}": data_offsets [${begin}, ${end}] run past the ${dataLength} data bytes`);
  const count = shapeSize(shape);
  const expectedBytes = count * ELEMENT_BYTES[dtype];
  if (!Number.isSafeInteger(expectedBytes) || expectedBytes !== end - begin) {
    fail(`tensor "${name}": shape [${shape.join(', ')}] of ${dtype} needs ${expectedBytes} bytes, data_offsets give ${end - begin}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** Parse a whole safetensors file; every tensor is converted to float32. */
export function parseSafetensors(bytes: Uint8Array, label = 'safetensors file'): SafetensorsFile {
  const { entries, metadata, dataStart } = readSafetensorsHeader(bytes, label);
  const tensors: StateDict = new Map();
  for (const e of entries) {
    const data = decodeToFloat32(e.dtype, bytes.subarray(dataStart + e.begin, dataStart + e.end), shapeSize(e.shape));
    tensors.set(e.name, { shape: [...e.shape], data });
  }
  return { tensors, metadata };
}

/** A tensor as its little-endian bytes, in any element type. */
export interface RawTensor {
  dtype: ElementType;
  shape: number[];
  bytes: Uint8Array;
}

/** Write float32 tensors in the order given; the header is space-padded so data starts 8-aligned. */
export function writeSafetensors(tensors: ReadonlyMap<string, HostTensor>, metadata: Record<string, string> = {}): Uint8Array<ArrayBuffer> {
  const raw = new Map<string, RawTensor>();
  for (const [name, t] of tensors) {
    if (t.data.length !== shapeSize(t.shape)) {
      throw new SafetensorsError(`tensor "${name}": shape [${t.shape.join(', ')}] needs ${shapeSize(t.shape)} values, has ${t.data.length}`);
    }
    raw.set(name, { dtype: 'F32', shape: t.shape, bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
  }
  return writeRawSafetensors(raw, metadata);
}

/** Write tensors of any element type, as given, in the order given; data starts 8-aligned. */
export function writeRawSafetensors(tensors: ReadonlyMap<string, RawTensor>, metadata: Record<string, string> = {}): Uint8Array<ArrayBuffer> {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new SafetensorsError('"__metadata__" is reserved and cannot name a tensor');
    const bytes = shapeSize(t.shape) * ELEMENT_BYTES[t.dtype];
    if (t.bytes.byteLength !== bytes) {
      throw new SafetensorsError(`tensor "${name}": shape [${t.shape.join(', ')}] of ${t.dtype} needs ${bytes} bytes, has ${t.bytes.byteLength}`);
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  let headerBytes = encoder.encode(json);
  const padded = Math.ceil(headerBytes.byteLength / 8) * 8;
  json += ' '.repeat(padded - headerBytes.byteLength);
  headerBytes = encoder.encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerBytes.byteLength, true);
  view.setUint32(4, Math.floor(headerBytes.byteLength / 2 ** 32), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const t of tensors.values()) {
    out.set(t.bytes, at);
    at += t.bytes.byteLength;
  }
  return out;
}
