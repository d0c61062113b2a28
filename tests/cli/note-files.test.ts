import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors.ts';
import { notesSplitOf, readNoteDocuments } from '../../src/cli/note-files.ts';
import { splitDocuments } from '../../src/data/notes.ts';
import { tempDir } from '../helpers/temp-dir.ts';

function notesFolder(): string {
  const dir = tempDir('qll-notes-');
  mkdirSync(join(dir, 'march'));
  writeFileSync(join(dir, 'a.txt'), 'Seen in clinic.\r\n');
  writeFileSync(join(dir, 'march', 'b.txt'), 'Heart failure review.');
  writeFileSync(join(dir, 'march', 'c.txt'), 'Atrial fibrillation.');
  writeFileSync(join(dir, '.DS_Store'), new Uint8Array([0, 1, 2]));
  writeFileSync(join(dir, 'blank.txt'), '\n');
  return dir;
}

describe('--notes', () => {
  it('reads a folder recursively (names relative to it, hidden and blank files left out) or one file', async () => {
    const dir = notesFolder();
    expect(await readNoteDocuments(dir)).toEqual([
      { name: 'a.txt', text: 'Seen in clinic.\n' },
      { name: join('march', 'b.txt'), text: 'Heart failure review.' },
      { name: join('march', 'c.txt'), text: 'Atrial fibrillation.' },
    ]);
    const one = join(dir, 'a.txt');
    expect(await readNoteDocuments(one)).toEqual([{ name: one, text: 'Seen in clinic.\n' }]);
  });

  it('names a binary file and a missing path', async () => {
    const dir = notesFolder();
    writeFileSync(join(dir, 'march', 'scan.pdf'), new Uint8Array([0x25, 0x50, 0, 1]));
    await expect(readNoteDocuments(dir)).rejects.toThrow(`--notes ${dir}: ${join('march', 'scan.pdf')} is not a plain-text file (a zero byte at byte 2)`);
    await expect(readNoteDocuments(join(dir, 'nope'))).rejects.toThrow(`cannot read --notes ${join(dir, 'nope')}: `);
  });

  it('splits as train and eval both do, and refuses options that do not go together', async () => {
    const dir = notesFolder();
    const split = await notesSplitOf({ notes: dir, 'held-out': '0.3', 'held-out-seed': '4' }, 'data');
    expect(split).toEqual(splitDocuments(await readNoteDocuments(dir), 0.3, 4));
    expect(split!.heldOut).toHaveLength(1);
    expect(await notesSplitOf({ texts: 'x.txt' }, 'texts')).toBeNull();
    const refused = [
      [{ texts: 'x.txt', 'held-out': '0.2' }, '--held-out applies to --notes, which is not given'],
      [{ data: 'x.txt', notes: dir }, 'give --data or --notes, not both'],
      [{ notes: dir, 'held-out': '1' }, '--held-out must be a share ≥ 0 and below 1, got 1'],
      [{ notes: join(dir, 'a.txt') }, 'holding some out takes at least 2 documents; there is 1'],
    ] as const;
    for (const [values, message] of refused) {
      const failure = notesSplitOf(values, 'data');
      await expect(failure).rejects.toThrow(message);
      await expect(failure).rejects.toBeInstanceOf(UsageError);
    }
  });
});
