import { existsSync, readFileSync } from 'node:fs';
import { unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/data/rng.ts';
import { PickleError, readTorchCheckpoint } from '../../src/model/pickle-checkpoint.ts';

// Made by tests/model/io-fixtures/make_torch_checkpoints.py with torch 1.13's torch.save.
const DIR = 'tests/model/io-fixtures';
type Expected = Record<string, { shape: number[]; values: number[] }>;
const read = (name: string) => new Uint8Array(readFileSync(`${DIR}/${name}`));
const expectedDtypes = JSON.parse(readFileSync(`${DIR}/dtypes.json`, 'utf8')) as Expected;

function expectMatches(actual: ReturnType<typeof readTorchCheckpoint>, expected: Expected) {
  expect([...actual.keys()]).toEqual(Object.keys(expected));
  for (const [name, { shape, values }] of Object.entries(expected)) {
    const t = actual.get(name)!;
    expect(t.shape, name).toEqual(shape);
    // torch's values as float64 → float32 is exact for every dtype in the fixture.
    expect(Array.from(t.data), name).toEqual(values.map(Math.fround));
  }
}

/** A torch-style zip holding the given data.pkl bytes (for hand-written hostile pickles). */
function zipWithPickle(pickle: Uint8Array): Uint8Array {
  return zipSync({ 'archive/data.pkl': pickle, 'archive/version': new TextEncoder().encode('3\n') }, { level: 0 });
}
const bytes = (...parts: (number[] | string)[]) =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? Array.from(new TextEncoder().encode(p)) : p)));

describe('pytorch_model.bin without executing pickle', () => {
  it('reads a zip-format torch.save: f16/bf16/f64/int64/bool, transposed and offset views, tied and 0-d tensors', () => {
    expectMatches(readTorchCheckpoint(read('dtypes.bin')), expectedDtypes);
  });

  it('reads the same state dict in the legacy (pre-1.6, non-zip) format', () => {
    expectMatches(readTorchCheckpoint(read('dtypes-legacy.bin')), expectedDtypes);
  });

  it('reads a BertForPreTraining-style checkpoint with heads and a tied decoder', () => {
    const expected = JSON.parse(readFileSync(`${DIR}/tiny-bert-bin/expected.json`, 'utf8')) as Expected;
    expectMatches(readTorchCheckpoint(read('tiny-bert-bin/pytorch_model.bin')), expected);
  });

  it('refuses a torch.save whose pickle calls os.system, naming it, and runs nothing', () => {
    const marker = '/tmp/qlora-lab-pwned';
    const call = () => readTorchCheckpoint(read('malicious.bin'), 'malicious.bin');
    expect(call).toThrow(PickleError);
    expect(call).toThrow(/malicious\.bin: refusing to load: the pickle references posix\.system/);
    expect(existsSync(marker)).toBe(false);
  });

  const hostile: [string, Uint8Array, RegExp][] = [
    // GLOBAL builtins eval + REDUCE: refused at the GLOBAL, before any call.
    ['builtins.eval', bytes([0x80, 0x02], 'cbuiltins\neval\n', [0x58, 4, 0, 0, 0], '1+1', [0x85, 0x52, 0x2e]), /references builtins\.eval/],
    // STACK_GLOBAL (protocol 4) spelling of the same.
    ['STACK_GLOBAL subprocess.run', bytes([0x80, 0x04, 0x8c, 10], 'subprocess', [0x8c, 3], 'run', [0x93, 0x2e]), /references subprocess\.run/],
    // An allowed callable applied to the wrong arguments.
    ['REDUCE on a storage class', bytes([0x80, 0x02], 'ctorch\nFloatStorage\n', [0x29, 0x52, 0x2e]), /refusing to call torch\.FloatStorage/],
    // NEWOBJ / INST-style opcodes that are never part of a state dict.
    ['NEWOBJ', bytes([0x80, 0x02], 'ccollections\nOrderedDict\n', [0x29, 0x81, 0x2e]), /opcode 0x81 .* not one torch\.save uses/],
    ['persistent id that is not a storage', bytes([0x80, 0x02, 0x58, 3, 0, 0, 0], 'abc', [0x51, 0x2e]), /unsupported persistent id/],
    ['a pickle that is not a dict', bytes([0x80, 0x02, 0x4b, 7, 0x2e]), /holds 7, not a state dict/],
    ['truncated', bytes([0x80, 0x02, 0x58, 100, 0, 0, 0], 'ab'), /truncated/],
    ['memo miss', bytes([0x80, 0x02, 0x68, 9, 0x2e]), /memo entry 9 is not defined/],
    ['stack underflow', bytes([0x80, 0x02, 0x73, 0x2e]), /stack underflow/],
  ];
  it.each(hostile)('refuses a hand-made pickle: %s', (_, pickle, message) => {
    expect(() => readTorchCheckpoint(zipWithPickle(pickle), 'x.bin')).toThrow(PickleError);
    expect(() => readTorchCheckpoint(zipWithPickle(pickle), 'x.bin')).toThrow(message);
  });

  it('reads the torch < 1.0 tensor record (_rebuild_tensor without requires_grad/hooks)', () => {
    const str = (text: string) => [0x58, text.length, 0, 0, 0, ...Array.from(new TextEncoder().encode(text))];
    const pickle = bytes(
      [0x80, 0x02, 0x7d], str('w'), 'ctorch._utils\n_rebuild_tensor\n',
      [0x28, 0x28], str('storage'), 'ctorch\nFloatStorage\n', str('0'), str('cpu'), [0x4b, 4, 0x74, 0x51], // persistent id
      [0x4b, 0, 0x4b, 2, 0x4b, 2, 0x86, 0x4b, 1, 0x4b, 2, 0x86, 0x74, 0x52, 0x73, 0x2e], // offset 0, size (2, 2), stride (1, 2): transposed
    );
    const storage = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
    const file = zipSync({ 'archive/data.pkl': pickle, 'archive/data/0': storage }, { level: 0 });
    const w = readTorchCheckpoint(file).get('w')!;
    expect(w.shape).toEqual([2, 2]);
    expect(Array.from(w.data)).toEqual([1, 3, 2, 4]);
  });

  it('refuses files that are not torch.save output', () => {
    expect(() => readTorchCheckpoint(bytes('{"not": "torch"}'), 'x.bin')).toThrow(/not a torch\.save file/);
    expect(() => readTorchCheckpoint(zipSync({ 'a.txt': bytes('hi') }), 'x.bin')).toThrow(/has no data\.pkl/);
  });

  it('a tensor record that reads past its storage is refused', () => {
    // The dtypes fixture with the zip's storage 0 cut short: every view into it must be rejected.
    const file = read('dtypes.bin');
    const entries = Object.fromEntries(Object.entries(unzipSync(file)).map(([name, data]) => [name, name.endsWith('/data/0') ? data.subarray(0, 8) : data]));
    expect(() => readTorchCheckpoint(zipSync(entries, { level: 0 }), 'x.bin')).toThrow(/dtypes\/data\/0 holds 8 bytes, but its storage record says \d+ F32 elements \(\d+ bytes\)/);
  });

  it('fuzz: 3000 mutations of the zip and of the legacy stream only parse or throw PickleError', () => {
    const rng = new Rng(7);
    const seeds = [read('dtypes.bin'), read('dtypes-legacy.bin')];
    let parsed = 0;
    let rejected = 0;
    for (let k = 0; k < 3000; k++) {
      const file = seeds[k % 2].slice();
      if (rng.int(4) === 0) {
        const cut = file.subarray(0, rng.int(file.length));
        file.set(cut);
        file.fill(0, cut.length);
      }
      for (let n = 1 + rng.int(6); n > 0; n--) file[rng.int(file.length)] ^= 1 << rng.int(8);
      try {
        for (const t of readTorchCheckpoint(file, 'fuzz').values()) {
          if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Error('inconsistent tensor');
        }
        parsed++;
      } catch (e) {
        if (!(e instanceof PickleError)) throw new Error(`mutation ${k} raised ${String(e)} instead of a PickleError`);
        rejected++;
      }
    }
    console.log(`pickle fuzz: ${parsed} parsed, ${rejected} rejected`);
    expect(parsed + rejected).toBe(3000);
    expect(rejected).toBeGreaterThan(300);
  });
});

describe('zip limits: nothing inflates past what the state dict declares', () => {
  const int32 = (n: number) => [0x4a, ...new Uint8Array(new Int32Array([n]).buffer)];
  const str = (text: string) => [0x58, text.length, 0, 0, 0, ...Array.from(new TextEncoder().encode(text))];
  /** {w: a float32 vector of n elements in storage "0"}, as torch.save pickles it (protocol 2). */
  const vectorPickle = (n: number) =>
    bytes(
      [0x80, 0x02, 0x7d], str('w'), 'ctorch._utils\n_rebuild_tensor\n',
      [0x28, 0x28], str('storage'), 'ctorch\nFloatStorage\n', str('0'), str('cpu'), int32(n), [0x74, 0x51], // persistent id
      [0x4b, 0, 0x28], int32(n), [0x74, 0x4b, 1, 0x85, 0x74, 0x52, 0x73, 0x2e], // offset 0, size (n,), stride (1,)
    );
  /** Set the uncompressed size that the central directory declares for `name`. */
  function declare(zip: Uint8Array, name: string, size: number): Uint8Array {
    const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
    const encoded = new TextEncoder().encode(name);
    for (let at = 0; at + 46 < zip.length; at++) {
      if (view.getUint32(at, true) !== 0x02014b50 || view.getUint16(at + 28, true) !== encoded.length) continue;
      if (encoded.every((c, i) => zip[at + 46 + i] === c)) {
        view.setUint32(at + 24, size, true);
        return zip;
      }
    }
    throw new Error(`no central directory entry ${name}`);
  }

  it('reads a deflated archive whose sizes agree', () => {
    const zip = zipSync({ 'archive/data.pkl': vectorPickle(3), 'archive/data/0': new Uint8Array(new Float32Array([1, 2, 3]).buffer) }, { level: 9 });
    expect(Array.from(readTorchCheckpoint(zip).get('w')!.data)).toEqual([1, 2, 3]);
  });

  it('refuses a data.pkl that would inflate past its limit, before inflating it', () => {
    const bomb = zipSync({ 'archive/data.pkl': new Uint8Array(4 << 20), 'archive/data/0': new Uint8Array(4) }, { level: 9 });
    expect(bomb.length).toBeLessThan(16 << 10);
    expect(() => readTorchCheckpoint(bomb, 'bomb.bin')).toThrow(
      'bomb.bin: archive/data.pkl would inflate to 4194304 bytes, over the limit of 1052672 for the pickle of a state dict (1048576 + 4096 for each of its 1 storages)',
    );
    // 512 MiB declared for a 16-byte pickle: refused from the declared size alone (inflating first would allocate it).
    const declared = declare(zipSync({ 'archive/data.pkl': new Uint8Array(16) }, { level: 9 }), 'archive/data.pkl', 512 << 20);
    expect(() => readTorchCheckpoint(declared, 'declared.bin')).toThrow(/archive\/data\.pkl would inflate to 536870912 bytes, over the limit of 1048576/);
  });

  it('refuses storages past 16 × the file, and storages whose size disagrees with their record', () => {
    const n = 5 << 20; // 20 MiB of zeros deflate to about 20 KB
    const bomb = zipSync({ 'archive/data.pkl': vectorPickle(n), 'archive/data/0': new Uint8Array(4 * n) }, { level: 9 });
    expect(bomb.length).toBeLessThan(64 << 10);
    expect(() => readTorchCheckpoint(bomb, 'bomb.bin')).toThrow(
      new RegExp(`^bomb\\.bin: the archive would inflate to more than 16777216 bytes \\(16 × its ${bomb.length} bytes, at least 16777216\\) by archive/data/0 \\(20971520 bytes\\)`),
    );
    const floats = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
    const short = zipSync({ 'archive/data.pkl': vectorPickle(5), 'archive/data/0': floats });
    expect(() => readTorchCheckpoint(short, 'short.bin')).toThrow('short.bin: archive/data/0 holds 16 bytes, but its storage record says 5 F32 elements (20 bytes)');
    // The central directory claims 20 bytes for a deflate stream of 16: caught after inflating it.
    const lying = declare(zipSync({ 'archive/data.pkl': vectorPickle(5), 'archive/data/0': floats }, { level: 9 }), 'archive/data/0', 20);
    expect(() => readTorchCheckpoint(lying, 'lying.bin')).toThrow('lying.bin: archive/data/0 inflates to 16 bytes, not the 20 it declares');
  });
});
