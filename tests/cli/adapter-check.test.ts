import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBertConfig } from '../../src/model/config.ts';
import { type TrainingLoraConfig, initLoraTensors } from '../../src/model/lora.ts';
import { writePeftAdapter } from '../../src/model/peft-files.ts';
import { fixtureModelDir } from '../helpers/fixtures.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// The tiny fixture model has hidden size 32 and 2 layers; the odd one's adapter is for hidden 72, 3 layers.
const TINY = fixtureModelDir('tiny');
const ODD_ADAPTER = join(fixtureModelDir('odd'), 'adapter_init');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/qlora-lab.js', ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

/** A query/value adapter for the tiny model with one Infinity in a lora_B, as PEFT files in `dir`. */
function writeInfAdapter(dir: string): void {
  const tiny = parseBertConfig(JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8')));
  const lora: TrainingLoraConfig = { r: 2, alpha: 4, dropout: 0, rslora: false, targetModules: ['query', 'value'] };
  const tensors = initLoraTensors(tiny, lora, 1, { pooler: true });
  tensors.get('encoder.layer.1.attention.self.value.lora_B')!.data[2 * 3 + 1] = Infinity;
  const config = { r: 2, loraAlpha: 4, loraDropout: 0, targetModules: lora.targetModules, useRslora: false, baseModelNameOrPath: TINY };
  const files = writePeftAdapter({ config, tensors }, tiny);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
}

describe('CLI adapter check', () => {
  it('merge refuses an adapter trained for another hidden size and writes nothing', () => {
    const out = join(tempDir('qll-adapter-'), 'merged');
    const r = cli('merge', '--model', TINY, '--adapter', ODD_ADAPTER, '--out', out);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`qlora-lab merge: adapter ${ODD_ADAPTER} has 13 problems:\n  encoder.layer.2.*: the base model has only 2 layers\n`);
    expect(r.stderr).toContain('\n  encoder.layer.0.attention.self.query: lora_A [4, 72] / lora_B [72, 4] do not fit the base weight [32, 32] (expected [4, 32] / [32, 4])\n');
    expect(r.stderr).toContain('\n  … and 3 more\nThis model has hidden_size 32, intermediate_size 64 and 2 layers: was the adapter trained for another one?\n');
    expect(r.stderr).not.toContain('Error');
    expect(existsSync(out)).toBe(false);
  });

  it('merge refuses an adapter holding Inf and writes nothing', () => {
    const dir = tempDir('qll-adapter-');
    const adapter = join(dir, 'inf-adapter');
    writeInfAdapter(adapter);
    const out = join(dir, 'merged');
    const r = cli('merge', '--model', TINY, '--adapter', adapter, '--out', out);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`qlora-lab merge: adapter ${adapter}: encoder.layer.1.attention.self.value.lora_B[3, 1] is Infinity (1 non-finite value in the adapter)`);
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    ['embed', ['--input', 'texts.txt', '--out', 'emb.npy']],
    ['eval', ['--pairs', 'pairs.csv', '--out', 'report.json']],
    ['train', ['--data', 'pairs.csv', '--batch-size', '2', '--out', 'trained'], '--stack'],
  ])('%s refuses a mismatched adapter before it touches the GPU or writes', (command, args, flag = '--adapter') => {
    const dir = tempDir('qll-adapter-');
    writeFileSync(join(dir, 'texts.txt'), 'one text\nanother text\n');
    writeFileSync(join(dir, 'pairs.csv'), 'text_a,text_b,label\na,b,1\nc,d,0\ne,f,1\ng,h,0\n');
    const inDir = args.map((a) => (/^(--|\d)/.test(a) ? a : join(dir, a)));
    const r = cli(command, '--model', TINY, flag, ODD_ADAPTER, ...inDir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`qlora-lab ${command}: adapter ${ODD_ADAPTER} has 13 problems:`);
    expect(r.stderr).not.toContain('GPU:');
    expect(existsSync(inDir[inDir.indexOf('--out') + 1])).toBe(false);
  });
});
