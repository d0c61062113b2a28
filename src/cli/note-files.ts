/**
 * `--notes <folder|file>` for decoder `train` and `eval`: the user's note files (a folder's, read
 * recursively, or one file) as documents, split by whole documents into training and held-out ones
 * (src/data/notes.ts) with the same --held-out share and --held-out-seed in both commands, so `eval`
 * measures perplexity on exactly the notes `train` left out.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { DEFAULT_NOTES_HELD_OUT as DEFAULT_HELD_OUT, type NoteDocument, type NoteFile, decodeNoteFiles, splitDocuments } from '../data/notes.ts';
import { numberOption } from './args.ts';
import { UsageError } from './errors.ts';

export const NOTES_OPTIONS = {
  notes: { type: 'string' },
  'held-out': { type: 'string' },
  'held-out-seed': { type: 'string' },
} as const;

export const NOTES_USAGE = `  --notes <dir|file>    plain-text notes (a folder's files, read recursively; hidden files skipped),
                        one document each, split by whole documents into training and held-out notes
  --held-out F          share of the documents held out (default ${DEFAULT_HELD_OUT}); train and eval must agree
  --held-out-seed N     seed of that split (default 0)`;

async function filesUnder(root: string, dir: string): Promise<NoteFile[]> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  const files: NoteFile[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(root, path)));
    else if (entry.isFile()) files.push({ name: relative(root, path), bytes: new Uint8Array(await readFile(path)) });
  }
  return files;
}

/** The documents of --notes: a folder's files (names relative to it) or one file; problems name the file. */
export async function readNoteDocuments(path: string): Promise<NoteDocument[]> {
  const info = await stat(path).catch((e: Error) => {
    throw new UsageError(`cannot read --notes ${path}: ${e.message}`);
  });
  const files = info.isDirectory() ? await filesUnder(path, path) : [{ name: path, bytes: new Uint8Array(await readFile(path)) }];
  try {
    return decodeNoteFiles(files);
  } catch (e) {
    throw new UsageError(`--notes ${path}: ${(e as Error).message}`);
  }
}

/**
 * The --notes documents split as the options say (train's side and eval's side); null without
 * --notes, where --held-out and --held-out-seed are refused. `other` names the option --notes
 * replaces (--data, --texts): giving both is refused.
 */
export async function notesSplitOf(values: Record<string, unknown>, other: string): Promise<{ train: NoteDocument[]; heldOut: NoteDocument[] } | null> {
  if (values.notes === undefined) {
    const stray = ['held-out', 'held-out-seed'].find((name) => values[name] !== undefined);
    if (stray) throw new UsageError(`--${stray} applies to --notes, which is not given`);
    return null;
  }
  if (values[other] !== undefined) throw new UsageError(`give --${other} or --notes, not both`);
  const documents = await readNoteDocuments(values.notes as string);
  const fraction = numberOption(values, 'held-out', DEFAULT_HELD_OUT, (f) => f >= 0 && f < 1, 'a share ≥ 0 and below 1');
  const seed = numberOption(values, 'held-out-seed', 0, Number.isInteger, 'an integer');
  try {
    return splitDocuments(documents, fraction, seed);
  } catch (e) {
    throw new UsageError(`--notes ${String(values.notes)}: ${(e as Error).message}`);
  }
}
