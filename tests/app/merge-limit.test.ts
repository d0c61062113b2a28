/** The app refuses a merge its tab cannot hold, naming the size, the limit and the CLI. */
import { expect, it } from 'vitest';
import { mergeProblem } from '../../src/app/merge-limit.ts';

it('lets a small model merge, and refuses one past a download buffer or the device memory', () => {
  expect(mergeProblem('demo-decoder', 1e6, 8)).toBeNull();
  expect(mergeProblem('demo-decoder', 1e6, undefined)).toBeNull();
  expect(mergeProblem('meta-llama/Llama-3.2-1B-Instruct', 1.24e9, undefined)).toBe(
    'The merged meta-llama/Llama-3.2-1B-Instruct is 4.6 GiB of float32 weights, over the 2.0 GiB a browser holds in one download; ' +
      'download the adapter and merge it with the command line instead: qlora-lab merge --model meta-llama/Llama-3.2-1B-Instruct --adapter <the unzipped adapter folder> --out <folder>.',
  );
  expect(mergeProblem('HuggingFaceTB/SmolLM2-360M-Instruct', 3.6e8, 2)).toMatch(
    /^Merging HuggingFaceTB\/SmolLM2-360M-Instruct holds its 1\.3 GiB of float32 weights about 3 times over \(weights, safetensors, zip\), more than this device's 2 GiB of memory; download the adapter and merge it with the command line instead: qlora-lab merge/,
  );
});
