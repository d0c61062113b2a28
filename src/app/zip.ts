/** The app's downloads are zips of folders made in the engine worker. */
import { strToU8, zipSync } from 'fflate';

/** Text compressed; binary weights stored (float32 barely compresses, and a large model would take minutes). */
export function zip(files: Record<string, string | Uint8Array>): Uint8Array {
  return zipSync(
    Object.fromEntries(Object.entries(files).map(([name, content]) => [name, typeof content === 'string' ? [strToU8(content), { level: 6 }] : [content, { level: 0 }]])),
  );
}
