import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkOutputPath, writeOutputDir, writeOutputFile } from '../../src/cli/output.ts';
import { tempDir } from '../helpers/temp-dir.ts';

describe('CLI outputs', () => {
  it('checks output paths before any work, with a plain message', async () => {
    const dir = tempDir('qll-out-');
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    await expect(checkOutputPath('out', file, 'dir')).rejects.toThrow(`--out ${file} is a file; give a folder`);
    await expect(checkOutputPath('out', join(file, 'sub', 'adapter'), 'dir')).rejects.toThrow(`cannot be created: ${file} is a file, not a folder`);
    await expect(checkOutputPath('out', dir, 'file')).rejects.toThrow(`--out ${dir} is a folder; give a file name`);
    await expect(checkOutputPath('out', join(dir, 'new', 'deeper'), 'dir')).resolves.toBeUndefined();
    await expect(checkOutputPath('out', join(dir, 'report.json'), 'file')).resolves.toBeUndefined();
  });

  it('keeps the previous folder contents when a later file of the set cannot be written', async () => {
    const dir = tempDir('qll-out-');
    writeFileSync(join(dir, 'adapter_config.json'), 'old config');
    writeFileSync(join(dir, 'adapter_model.safetensors'), 'old weights');
    writeFileSync(join(dir, 'notes.txt'), 'the user’s own file');
    // The second file's temporary name is taken by a folder: its write fails after the first succeeded.
    mkdirSync(join(dir, `.adapter_model.safetensors.partial-${process.pid}`));
    await expect(writeOutputDir(dir, { 'adapter_config.json': 'new config', 'adapter_model.safetensors': new Uint8Array([1, 2]) })).rejects.toThrow(
      `could not write ${dir}: `,
    );
    expect(readFileSync(join(dir, 'adapter_config.json'), 'utf8')).toBe('old config');
    expect(readFileSync(join(dir, 'adapter_model.safetensors'), 'utf8')).toBe('old weights');
    expect(readdirSync(dir).sort()).toEqual([`.adapter_model.safetensors.partial-${process.pid}`, 'adapter_config.json', 'adapter_model.safetensors', 'notes.txt']);

    const fresh = tempDir('qll-out-');
    await writeOutputDir(join(fresh, 'adapter'), { 'adapter_config.json': 'new config', 'adapter_model.safetensors': new Uint8Array([1, 2]) });
    expect(readdirSync(join(fresh, 'adapter')).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(readFileSync(join(fresh, 'adapter', 'adapter_config.json'), 'utf8')).toBe('new config');
  });

  it('writes names with a folder into that subfolder, through a temporary sibling there too', async () => {
    const dir = tempDir('qll-out-');
    mkdirSync(join(dir, '1_Pooling'));
    writeFileSync(join(dir, '1_Pooling', 'config.json'), 'old pooling');
    mkdirSync(join(dir, '1_Pooling', `.config.json.partial-${process.pid}`));
    await expect(writeOutputDir(dir, { 'modules.json': '[]', '1_Pooling/config.json': 'new pooling' })).rejects.toThrow(`could not write ${dir}: `);
    expect(readFileSync(join(dir, '1_Pooling', 'config.json'), 'utf8')).toBe('old pooling');
    expect(readdirSync(dir)).not.toContain('modules.json');
    const fresh = join(tempDir('qll-out-'), 'merged');
    await writeOutputDir(fresh, { 'modules.json': '[]', '1_Pooling/config.json': 'new pooling' });
    expect(readdirSync(fresh, { recursive: true }).map(String).sort()).toEqual(['1_Pooling', '1_Pooling/config.json', 'modules.json']);
  });

  it('replaces a single file only once the new one is complete', async () => {
    const dir = tempDir('qll-out-');
    const path = join(dir, 'emb.npy');
    writeFileSync(path, 'old');
    mkdirSync(join(dir, `.emb.npy.partial-${process.pid}`));
    await expect(writeOutputFile(path, 'new')).rejects.toThrow(`The previous ${path}, if any, was kept.`);
    expect(readFileSync(path, 'utf8')).toBe('old');
    await writeOutputFile(join(dir, 'report.json'), '{}');
    expect(readFileSync(join(dir, 'report.json'), 'utf8')).toBe('{}');
  });

  it.each([
    ['train', ['--model', 'missing-model', '--data', 'missing.csv']],
    ['merge', ['--model', 'missing-model', '--adapter', 'missing-adapter']],
    ['dataset', ['--pairs', 'missing.csv']],
  ])('%s refuses an --out that is a file before reading anything', (command, args) => {
    const dir = tempDir('qll-out-');
    const file = join(dir, 'taken');
    writeFileSync(file, 'x');
    const r = spawnSync(process.execPath, ['bin/qlora-lab.js', command, ...args, '--out', file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`--out ${file} is a file; give a folder`);
    expect(readFileSync(file, 'utf8')).toBe('x');
  });
});
