/**
 * `pytorch_model.bin` (torch.save of a state dict) read WITHOUT executing pickle.
 *
 * torch.save writes a zip (`<archive>/data.pkl` + one `<archive>/data/<key>` entry per storage) or,
 * before torch 1.6, the "legacy" stream (magic, version, sys info, the pickle, the storage keys,
 * then each storage's bytes). The pickle describes tensors as calls of
 * torch._utils._rebuild_tensor_v2 (_rebuild_tensor before torch 1.0) on persistent storage ids.
 * This module interprets just the opcodes torch.save uses and allows just the globals a state dict
 * needs; any other global (os.system, builtins.eval, numpy...) is refused by name before anything
 * could run it.
 *
 * A zip is read in three steps so that nothing inflates without bound (a small file can declare
 * gigabytes): list the entries with their declared sizes, inflate data.pkl if its size is within
 * PICKLE_BASE_BYTES + PICKLE_BYTES_PER_STORAGE × storages, then inflate the storages it refers to
 * only if each declared size is exactly what the pickle's storage record says and all together stay
 * within MAX_INFLATE_RATIO × the file (or MIN_INFLATE_LIMIT).
 */
import { type UnzipFileInfo, unzipSync } from 'fflate';
import { ELEMENT_BYTES, type ElementType, decodeToFloat32 } from './dtypes.ts';
import { type StateDict, shapeSize } from './state-dict.ts';

export class PickleError extends Error {
  override name = 'PickleError';
}

const STORAGE_TYPES: Record<string, ElementType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};
const CALLABLES = new Set(['collections.OrderedDict', 'torch._utils._rebuild_tensor', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter']);

class PyGlobal {
  constructor(readonly path: string) {}
}
class PyTuple {
  constructor(readonly items: PyValue[]) {}
}
class PyDict {
  readonly items = new Map<PyValue, PyValue>();
}
class StorageRef {
  constructor(
    readonly type: ElementType,
    readonly key: string,
    readonly numel: number,
    /** Legacy views: elements [offset, offset + numel) of the root storage `key`. */
    readonly offset: number,
  ) {}
}
class TensorRecord {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}
type PyValue = null | boolean | number | bigint | string | PyValue[] | PyTuple | PyDict | PyGlobal | StorageRef | TensorRecord;

/** A mark on the stack (pickle's MARK opcode). */
const MARK = Symbol('mark');

/**
 * A state dict's data.pkl takes about 200 bytes a tensor (name, storage record, shape, strides);
 * these limits leave room for long names and torch's metadata with an order of magnitude to spare.
 */
const PICKLE_BASE_BYTES = 1 << 20;
const PICKLE_BYTES_PER_STORAGE = 4096;
/**
 * torch.save stores zip entries uncompressed, so a checkpoint inflates to less than its own size; one
 * zipped again with deflate inflates more where tensors are all zeros, but never by much overall.
 */
const MAX_INFLATE_RATIO = 16;
const MIN_INFLATE_LIMIT = 16 << 20;

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

/** Read a torch.save'd state dict (zip or legacy format) into float32 host tensors. */
export function readTorchCheckpoint(bytes: Uint8Array, label = 'pytorch_model.bin'): StateDict {
  if (bytes.byteLength >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return readZipCheckpoint(bytes, label);
  if (bytes.byteLength >= 2 && bytes[0] === 0x80) return readLegacyCheckpoint(bytes, label);
  throw new PickleError(`${label}: not a torch.save file (neither a zip archive nor a legacy pickle stream)`);
}

function readZipCheckpoint(bytes: Uint8Array, label: string): StateDict {
  const unzip = (take: (entry: UnzipFileInfo) => boolean) => {
    try {
      return unzipSync(bytes, { filter: take });
    } catch (e) {
      throw new PickleError(`${label}: corrupt zip archive (${(e as Error).message})`);
    }
  };
  // Entries and their declared sizes, nothing inflated (the filter refuses every entry).
  const listed = new Map<string, number>();
  unzip((entry) => {
    listed.set(entry.name, entry.compression === 0 ? entry.size : entry.originalSize);
    return false;
  });
  const pickleName = [...listed.keys()].find((name) => name.endsWith('data.pkl') && name.split('/').length <= 2);
  if (!pickleName) throw new PickleError(`${label}: zip archive has no data.pkl, so it is not a torch.save file`);
  const root = pickleName.slice(0, -'data.pkl'.length);
  const storageEntries = [...listed.keys()].filter((name) => name.startsWith(`${root}data/`)).length;
  const pickleLimit = PICKLE_BASE_BYTES + PICKLE_BYTES_PER_STORAGE * storageEntries;
  if (listed.get(pickleName)! > pickleLimit) {
    throw new PickleError(
      `${label}: ${pickleName} would inflate to ${listed.get(pickleName)} bytes, over the limit of ${pickleLimit} for the pickle of a state dict ` +
        `(${PICKLE_BASE_BYTES} + ${PICKLE_BYTES_PER_STORAGE} for each of its ${storageEntries} storages)`,
    );
  }
  const head = unzip((entry) => entry.name === pickleName || entry.name === `${root}byteorder`);
  const byteorder = head[`${root}byteorder`];
  if (byteorder && new TextDecoder().decode(byteorder) !== 'little') {
    throw new PickleError(`${label}: big-endian checkpoints are not supported`);
  }
  const { value } = unpickle(head[pickleName], 0, label, legacyOrZipStorage(false, label));
  // Each storage the pickle uses must be declared exactly its byte size, and all of them within the limit.
  const limit = Math.max(MIN_INFLATE_LIMIT, MAX_INFLATE_RATIO * bytes.byteLength);
  let total = listed.get(pickleName)!;
  const wanted = new Set<string>();
  for (const ref of storagesOf(value).values()) {
    const name = `${root}data/${ref.key}`;
    const declared = listed.get(name);
    if (declared === undefined) throw new PickleError(`${label}: storage ${ref.key} is referenced but ${name} is not in the archive`);
    const expected = ref.numel * ELEMENT_BYTES[ref.type];
    if (declared !== expected) throw new PickleError(`${label}: ${name} holds ${declared} bytes, but its storage record says ${ref.numel} ${ref.type} elements (${expected} bytes)`);
    total += declared;
    if (total > limit) {
      throw new PickleError(
        `${label}: the archive would inflate to more than ${limit} bytes (${MAX_INFLATE_RATIO} × its ${bytes.byteLength} bytes, at least ${MIN_INFLATE_LIMIT}) ` +
          `by ${name} (${declared} bytes); torch.save does not compress, so save the checkpoint again with torch.save or as safetensors`,
      );
    }
    wanted.add(name);
  }
  const entries = unzip((entry) => wanted.has(entry.name));
  return materialise(value, label, (ref) => {
    const name = `${root}data/${ref.key}`;
    const data = entries[name];
    // A declared size smaller or larger than the deflate stream leaves a short or cut buffer.
    if (data.byteLength !== listed.get(name)) throw new PickleError(`${label}: ${name} inflates to ${data.byteLength} bytes, not the ${listed.get(name)} it declares`);
    return data;
  });
}

function readLegacyCheckpoint(bytes: Uint8Array, label: string): StateDict {
  const noStorage = () => {
    throw new PickleError(`${label}: unexpected storage reference in the legacy header`);
  };
  let at = 0;
  const next = (persistent: (pid: PyValue) => PyValue) => {
    const r = unpickle(bytes, at, label, persistent);
    at = r.end;
    return r.value;
  };
  if (next(noStorage) !== LEGACY_MAGIC) throw new PickleError(`${label}: pickle stream without torch's magic number: not a torch.save file`);
  const protocol = next(noStorage);
  if (protocol !== LEGACY_PROTOCOL) throw new PickleError(`${label}: legacy torch format version ${String(protocol)} is not supported (expected ${LEGACY_PROTOCOL})`);
  const sysInfo = next(noStorage);
  if (sysInfo instanceof PyDict && sysInfo.items.get('little_endian') === false) throw new PickleError(`${label}: big-endian checkpoints are not supported`);
  const value = next(legacyOrZipStorage(true, label));
  const keys = next(noStorage);
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new PickleError(`${label}: legacy storage key list is malformed`);
  // Each storage follows as an int64 element count then its bytes; the record's dtype gives the size.
  const storages = new Map<string, Uint8Array>();
  const refs = storagesOf(value);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const key of keys as string[]) {
    if (at + 8 > bytes.byteLength) throw new PickleError(`${label}: truncated before storage ${key}`);
    const numel = Number(view.getBigInt64(at, true));
    const type = refs.get(key)?.type;
    if (type === undefined) throw new PickleError(`${label}: storage ${key} is listed but no tensor uses it`);
    const length = numel * ELEMENT_BYTES[type];
    if (!(numel >= 0) || at + 8 + length > bytes.byteLength) throw new PickleError(`${label}: storage ${key} (${numel} elements) runs past the end of the file`);
    storages.set(key, bytes.subarray(at + 8, at + 8 + length));
    at += 8 + length;
  }
  return materialise(value, label, (ref) => {
    const data = storages.get(ref.key);
    if (!data) throw new PickleError(`${label}: storage ${ref.key} is referenced but not in the file`);
    return data;
  });
}

/** The storages a state dict's tensors use, by key (the first record of each). */
function storagesOf(value: PyValue): Map<string, StorageRef> {
  const refs = new Map<string, StorageRef>();
  if (value instanceof PyDict) for (const v of value.items.values()) if (v instanceof TensorRecord && !refs.has(v.storage.key)) refs.set(v.storage.key, v.storage);
  return refs;
}

/** persistent_load for ('storage', <Storage class>, key, location, numel[, view_metadata]). */
function legacyOrZipStorage(legacy: boolean, label: string) {
  return (pid: PyValue): PyValue => {
    const items = pid instanceof PyTuple ? pid.items : [];
    const [kind, type, key, , numel, view] = items;
    const typeName = type instanceof PyGlobal ? type.path.replace(/^torch\./, '') : '';
    if (kind !== 'storage' || !Object.hasOwn(STORAGE_TYPES, typeName) || typeof key !== 'string' || typeof numel !== 'number' || items.length !== (legacy ? 6 : 5)) {
      throw new PickleError(`${label}: unsupported persistent id ${describe(pid)} (expected a torch storage record)`);
    }
    if (view === null || view === undefined) return new StorageRef(STORAGE_TYPES[typeName], key, numel, 0);
    // Legacy storage views: (view_key, offset, view_size) into the root storage.
    const v = view instanceof PyTuple ? view.items : [];
    if (typeof v[1] !== 'number' || typeof v[2] !== 'number') throw new PickleError(`${label}: malformed storage view ${describe(view)}`);
    return new StorageRef(STORAGE_TYPES[typeName], key, v[2], v[1]);
  };
}

/** Turn the unpickled dict of tensor records into host tensors, reading and checking each storage. */
function materialise(value: PyValue, label: string, storageBytes: (ref: StorageRef) => Uint8Array): StateDict {
  if (!(value instanceof PyDict)) throw new PickleError(`${label}: the pickle holds ${describe(value)}, not a state dict of tensors`);
  const decoded = new Map<string, Float32Array>();
  const out: StateDict = new Map();
  for (const [name, record] of value.items) {
    if (typeof name !== 'string') throw new PickleError(`${label}: state dict key ${describe(name)} is not a string`);
    if (!(record instanceof TensorRecord)) throw new PickleError(`${label}: "${name}" is ${describe(record)}, not a tensor`);
    const ref = record.storage;
    const cacheKey = `${ref.key}:${ref.offset}`;
    let storage = decoded.get(cacheKey);
    if (!storage) {
      const bytes = storageBytes(ref);
      const size = ELEMENT_BYTES[ref.type];
      if ((ref.offset + ref.numel) * size > bytes.byteLength) {
        throw new PickleError(`${label}: storage ${ref.key} should hold ${ref.offset + ref.numel} ${ref.type} elements but has ${Math.floor(bytes.byteLength / size)}`);
      }
      storage = decodeToFloat32(ref.type, bytes.subarray(ref.offset * size, (ref.offset + ref.numel) * size), ref.numel);
      decoded.set(cacheKey, storage);
    }
    out.set(name, { shape: record.size, data: gather(storage, record, name, label) });
  }
  return out;
}

/** Copy a (possibly strided) view out of its storage, bounds-checked. */
function gather(storage: Float32Array, t: TensorRecord, name: string, label: string): Float32Array {
  const n = shapeSize(t.size);
  if (n === 0) return new Float32Array(0);
  let last = t.offset;
  for (let d = 0; d < t.size.length; d++) last += (t.size[d] - 1) * t.stride[d];
  const where = `${label}: "${name}" [${t.size.join(', ')}] with strides [${t.stride.join(', ')}] at offset ${t.offset}`;
  if (t.offset < 0 || last >= storage.length) throw new PickleError(`${where} reads past its storage of ${storage.length} elements`);
  // Only views that repeat elements (stride 0, expand()) can be larger than their storage.
  if (n > storage.length) throw new PickleError(`${where} repeats storage elements (an expanded view), which is not supported`);
  if (isContiguous(t)) return storage.slice(t.offset, t.offset + n);
  const out = new Float32Array(n);
  const rank = t.size.length;
  const index = new Array<number>(rank).fill(0);
  let src = t.offset;
  for (let i = 0; i < n; i++) {
    out[i] = storage[src];
    // Odometer over the dimensions, last fastest.
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      src += t.stride[d];
      if (index[d] < t.size[d]) break;
      src -= t.stride[d] * t.size[d];
      index[d] = 0;
    }
  }
  return out;
}

/** Row-major with no gaps (size-1 dimensions may have any stride). */
function isContiguous(t: TensorRecord): boolean {
  let expected = 1;
  for (let d = t.size.length - 1; d >= 0; d--) {
    if (t.size[d] !== 1 && t.stride[d] !== expected) return false;
    expected *= t.size[d];
  }
  return true;
}

function describe(value: unknown): string {
  if (value === null) return 'None';
  if (value instanceof PyGlobal) return value.path;
  if (value instanceof PyTuple) return `a tuple of ${value.items.length}`;
  if (value instanceof PyDict) return 'a dict';
  if (value instanceof TensorRecord) return 'a tensor';
  if (value instanceof StorageRef) return 'a storage';
  if (Array.isArray(value)) return `a list of ${value.length}`;
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : String(value);
}

const asInts = (v: PyValue): number[] | null =>
  v instanceof PyTuple && v.items.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0) ? (v.items as number[]) : null;

/** Apply one of the allowed callables (REDUCE). */
function call(fn: PyGlobal, args: PyValue, label: string): PyValue {
  const a = args instanceof PyTuple ? args.items : null;
  if (!a) throw new PickleError(`${label}: ${fn.path} called with ${describe(args)} instead of an argument tuple`);
  switch (fn.path) {
    case 'collections.OrderedDict':
      if (a.length !== 0) throw new PickleError(`${label}: collections.OrderedDict called with arguments`);
      return new PyDict();
    case 'torch._utils._rebuild_tensor': // torch < 1.0: (storage, offset, size, stride)
    case 'torch._utils._rebuild_tensor_v2': {
      const [storage, offset] = a;
      const size = asInts(a[2]);
      const stride = asInts(a[3]);
      if (!(storage instanceof StorageRef) || typeof offset !== 'number' || !Number.isSafeInteger(offset) || !size || !stride || size.length !== stride.length) {
        throw new PickleError(`${label}: malformed tensor record (${a.map(describe).join(', ')})`);
      }
      return new TensorRecord(storage, offset, size, stride);
    }
    case 'torch._utils._rebuild_parameter':
      if (!(a[0] instanceof TensorRecord)) throw new PickleError(`${label}: parameter without tensor data`);
      return a[0];
  }
  throw new PickleError(`${label}: refusing to call ${fn.path}`);
}

/**
 * Interpret one pickle starting at `start`. Only the opcodes and globals torch.save emits for
 * a state dict are accepted; each read is bounds-checked, so corrupt input throws.
 */
function unpickle(bytes: Uint8Array, start: number, label: string, persistentLoad: (pid: PyValue) => PyValue): { value: PyValue; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: (PyValue | typeof MARK)[] = [];
  const memo = new Map<number, PyValue>();
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let at = start;
  const fail = (why: string): never => {
    throw new PickleError(`${label}: ${why} (pickle offset ${at})`);
  };
  const need = (n: number) => {
    if (!(n >= 0) || at + n > bytes.byteLength) fail('pickle data is truncated');
  };
  const u8 = () => (need(1), bytes[at++]);
  const u16 = () => (need(2), (at += 2), view.getUint16(at - 2, true));
  const i32 = () => (need(4), (at += 4), view.getInt32(at - 4, true));
  const u32 = () => (need(4), (at += 4), view.getUint32(at - 4, true));
  const u64 = () => (need(8), (at += 8), Number(view.getBigUint64(at - 8, true)));
  const take = (n: number) => (need(n), (at += n), bytes.subarray(at - n, at));
  const text = (n: number) => {
    const raw = take(n);
    try {
      return utf8.decode(raw);
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0) fail('unterminated GLOBAL');
    const s = latin1.decode(bytes.subarray(at, end));
    at = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) return fail('stack underflow');
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail('stack underflow');
    return v;
  };
  const popMark = (): PyValue[] => {
    const m = stack.lastIndexOf(MARK);
    if (m < 0) fail('no MARK on the stack');
    const items = stack.splice(m) as PyValue[];
    return items.slice(1);
  };
  const global = (module: string, name: string): PyGlobal => {
    const path = `${module}.${name}`;
    if (CALLABLES.has(path) || (module === 'torch' && Object.hasOwn(STORAGE_TYPES, name))) return new PyGlobal(path);
    return fail(`refusing to load: the pickle references ${path}, which is not part of a plain tensor state dict (pickle code is never executed here; convert the checkpoint to safetensors if it is trusted)`);
  };
  const setItems = (dict: PyValue, kv: PyValue[]) => {
    if (!(dict instanceof PyDict)) fail(`SETITEM on ${describe(dict)}`);
    if (kv.length % 2 !== 0) fail('odd number of items for a dict');
    for (let k = 0; k < kv.length; k += 2) {
      const key = kv[k];
      if (typeof key !== 'string' && typeof key !== 'number') fail(`dict key ${describe(key)} is not a string or int`);
      (dict as PyDict).items.set(key, kv[k + 1]);
    }
  };
  const appendAll = (list: PyValue, items: PyValue[]) => {
    if (!Array.isArray(list)) fail(`APPEND on ${describe(list)}`);
    (list as PyValue[]).push(...items);
  };
  for (;;) {
    const opAt = at;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('unknown pickle protocol');
        break;
      case 0x95: // FRAME (length is advisory)
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`pickle ends with ${stack.length} values on the stack`);
        return { value: pop(), end: at };
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x74: // TUPLE
        stack.push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        const items: PyValue[] = [];
        for (let k = 0; k < n; k++) items.unshift(pop());
        stack.push(new PyTuple(items));
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const item = pop();
        appendAll(top(), [item]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendAll(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const dict = new PyDict();
        setItems(dict, popMark());
        stack.push(dict);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement of n bytes
        const n = u8();
        const b = take(n);
        let v = 0n;
        for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[k]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(at, false));
        at += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64()));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8())));
        break;
      case 0x54: {
        // BINSTRING
        const n = i32();
        if (n < 0) fail('negative string length');
        stack.push(latin1.decode(take(n)));
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) fail(`memo entry ${key} is not defined`);
        stack.push(memo.get(key) as PyValue);
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistentLoad(pop()));
        break;
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PyGlobal) || !CALLABLES.has(fn.path)) fail(`refusing to call ${describe(fn)}: not part of a plain tensor state dict`);
        stack.push(call(fn as PyGlobal, args, label));
        break;
      }
      case 0x62: {
        // BUILD: only OrderedDict's instance state (torch's _metadata) is expected; it is not needed.
        const state = pop();
        const target = top();
        if (!(target instanceof PyDict) || !(state instanceof PyDict)) fail(`BUILD of ${describe(target)} with ${describe(state)} is not part of a plain state dict`);
        break;
      }
      default:
        fail(`pickle opcode 0x${op.toString(16).padStart(2, '0')} at ${opAt} is not one torch.save uses for a state dict`);
    }
  }
}
