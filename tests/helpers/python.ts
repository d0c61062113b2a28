/**
 * Debian's /usr/bin/python3, and its python3-torch: the independent reader some tests check exports
 * with. Where torch is missing those tests are skipped, except in CI (.ci/run installs python3-torch
 * and sets QLORA_LAB_REQUIRE_PYTHON_TORCH=1), where they fail and say why.
 */
import { spawnSync } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';

function probeTorch(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} cannot run (${r.error.message})`;
  return r.status === 0 ? null : `${PYTHON} cannot import torch: ${r.stderr.trim().split('\n').at(-1)}`;
}

const torchMissing = probeTorch();
/** Skip a test that needs python3 + torch, outside CI only. */
export const skipWithoutPythonTorch = torchMissing !== null && process.env.QLORA_LAB_REQUIRE_PYTHON_TORCH !== '1';

/** Throws, naming the Debian package, when python3 cannot import torch (a test that was not skipped needs it). */
export function assertPythonTorch(): void {
  if (torchMissing) throw new Error(`${torchMissing}; install Debian's python3-torch (apt-get install python3-torch)`);
}

export function runPython(args: string[], cwd?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', cwd, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${PYTHON} cannot run (${r.error.message})`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
