/**
 * Whether a merged decoder can be built in this tab. The merge holds the model about three times
 * over as float32 (the weights being folded, the safetensors file, the zip), and the zip is one
 * ArrayBuffer, which browsers cap near 2 GiB (and a zip without zip64 at 4 GiB). A model past either
 * limit is refused before anything is read, with its size and the command line that merges it.
 */
import { formatBytes } from '../model/memory.ts';

/** The largest zip this app builds in one buffer. */
export const MAX_MERGED_ZIP_BYTES = 2 * 1024 ** 3;
/** Copies of the float32 weights held at once while merging and zipping. */
const COPIES = 3;

/**
 * Null when a merged model of `parameters` float32 weights fits; else why not, naming the size, the
 * limit and the CLI. `deviceMemoryGiB`: navigator.deviceMemory where the browser tells it.
 */
export function mergeProblem(label: string, parameters: number, deviceMemoryGiB: number | undefined): string | null {
  const bytes = parameters * 4;
  const instead = `download the adapter and merge it with the command line instead: qlora-lab merge --model ${label} --adapter <the unzipped adapter folder> --out <folder>`;
  if (bytes > MAX_MERGED_ZIP_BYTES) {
    return `The merged ${label} is ${formatBytes(bytes)} of float32 weights, over the ${formatBytes(MAX_MERGED_ZIP_BYTES)} a browser holds in one download; ${instead}.`;
  }
  if (deviceMemoryGiB !== undefined && COPIES * bytes > deviceMemoryGiB * 1024 ** 3) {
    return `Merging ${label} holds its ${formatBytes(bytes)} of float32 weights about ${COPIES} times over (weights, safetensors, zip), more than this device's ${deviceMemoryGiB} GiB of memory; ${instead}.`;
  }
  return null;
}
