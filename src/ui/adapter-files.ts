/** A PEFT adapter the user picked in the page (its two files, from a folder or chosen one by one), read for the engine worker. */
import type { PeftAdapterFiles } from '../model/peft-files.ts';

export interface PickedAdapter {
  files: PeftAdapterFiles;
  /** The folder it came from, else its config file's name. */
  name: string;
}

export async function readPickedAdapter(files: File[]): Promise<PickedAdapter> {
  const config = files.find((f) => f.name === 'adapter_config.json');
  const weights = files.find((f) => f.name === 'adapter_model.safetensors');
  if (!config || !weights) throw new Error('Choose both files of the adapter: adapter_config.json and adapter_model.safetensors.');
  return {
    files: { 'adapter_config.json': await config.text(), 'adapter_model.safetensors': new Uint8Array(await weights.arrayBuffer()) },
    name: weights.webkitRelativePath.split('/')[0] || config.name,
  };
}
