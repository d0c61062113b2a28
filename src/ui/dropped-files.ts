/**
 * The files of a drop or a file input, each with the name the notes go by: a dropped folder read
 * recursively (its path within the drop, as a folder picked with webkitdirectory names it), plain
 * files by their names. Reads only what the user dropped or picked; nothing leaves the tab.
 */

export interface NamedFile {
  name: string;
  file: File;
}

/** A picked file's name: its path in the folder picked (webkitdirectory), else its own name. */
export function pickedName(file: File): string {
  return file.webkitRelativePath || file.name;
}

function entryFile(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

/** A directory's entries: readEntries gives them in batches until an empty one. */
async function directoryEntries(entry: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = entry.createReader();
  const all: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

async function entryFiles(entry: FileSystemEntry): Promise<NamedFile[]> {
  const name = entry.fullPath.replace(/^\//, '');
  if (entry.isFile) return [{ name, file: await entryFile(entry as FileSystemFileEntry) }];
  if (!entry.isDirectory) return [];
  const nested = await Promise.all((await directoryEntries(entry as FileSystemDirectoryEntry)).map(entryFiles));
  return nested.flat();
}

/**
 * The files of a drop, folders read recursively. The items are taken at once: a DataTransfer's
 * items are gone once the drop event handler returns. A dropped file is taken as the file it is;
 * only folders go through the (older, callback) entries API.
 */
export function droppedFiles(data: DataTransfer): Promise<NamedFile[]> {
  const taken = [...data.items].flatMap((item): (NamedFile | FileSystemDirectoryEntry)[] => {
    if (item.kind !== 'file') return [];
    const entry = item.webkitGetAsEntry();
    if (entry?.isDirectory) return [entry as FileSystemDirectoryEntry];
    const file = item.getAsFile();
    return file ? [{ name: file.name, file }] : [];
  });
  return Promise.all(taken.map((t) => ('file' in t ? Promise.resolve([t]) : entryFiles(t)))).then((lists) => lists.flat());
}
