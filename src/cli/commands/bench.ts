/** `qlora-lab bench <name>`: the same benchmarks as `npm run bench -- <name>`. */
import { readdirSync } from 'node:fs';
import { UsageError } from '../errors.ts';

export const summary = 'run a benchmark (kernels, embed, train, ingest, tsne); the last line printed is JSON';

export async function run(args: string[]): Promise<void> {
  const dir = new URL('../../../bench/', import.meta.url);
  const names = readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'run.ts').map((f) => f.slice(0, -3));
  const [name, ...rest] = args;
  if (!name || !names.includes(name)) throw new UsageError(`usage: qlora-lab bench <${names.join('|')}> [args]`);
  const bench = (await import(new URL(`${name}.ts`, dir).href)) as { default: (args: string[]) => Promise<void> };
  await bench.default(rest);
}
