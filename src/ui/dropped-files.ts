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
 * The files of a drop, folders read recursively. The entries are taken at once: a DataTransfer's
 * items are gone once the drop event handler returns.
 */
export function droppedFiles(data: DataTransfer): Promise<NamedFile[]> {
  const entries = [...data.items].map((item) => (item.kind === 'file' ? item.webkitGetAsEntry() : null));
  if (entries.every((e) => e === null)) return Promise.resolve([...data.files].map((file) => ({ name: pickedName(file), file })));
  return Promise.all(entries.map((e) => (e ? entryFiles(e) : Promise.resolve([])))).then((lists) => lists.flat());
}
