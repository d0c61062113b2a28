/**
 * `qlora-lab <command> [options]`. Each command lives in ./commands/<name>.ts and exports
 * `summary` (one line for the help) and `run(args)`; progress goes to stderr, results to files/stdout.
 */
import { readdirSync } from 'node:fs';
import { UsageError } from './errors.ts';

export interface Command {
  summary: string;
  run(args: string[]): Promise<void>;
}


async function main(argv: string[]): Promise<number> {
  const names = readdirSync(new URL('./commands/', import.meta.url))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || !names.includes(name)) {
    const lines = await Promise.all(names.map(async (n) => `  ${n.padEnd(12)} ${((await import(`./commands/${n}.ts`)) as Command).summary}`));
    console.error(`usage: qlora-lab <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nqlora-lab <command> --help for its options`);
    return name && name !== '--help' && name !== '-h' ? 2 : 0;
  }
  const command = (await import(`./commands/${name}.ts`)) as Command;
  try {
    await command.run(args);
    return 0;
  } catch (e) {
    const message = e instanceof Error ? (e instanceof UsageError ? e.message : `${e.name}: ${e.message}`) : String(e);
    console.error(`qlora-lab ${name}: ${message}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
