// Runs the whole vitest suite, then prints the plain summary CI reads as its last line.
// GPU test files are named *.gpu.test.ts (Node + Dawn) or *.browser.test.ts (headless Chromium);
// their executed count is printed so a run without GPU tests is visible.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

mkdirSync('test-output', { recursive: true });
const results = 'test-output/vitest-results.json';
const run = spawnSync(
  'npx',
  ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${results}`, ...process.argv.slice(2)],
  { stdio: 'inherit', env: { ...process.env, FORCE_COLOR: '0' } },
);

let passed = 0;
let failed = 0;
let gpuExecuted = 0;
try {
  const report = JSON.parse(readFileSync(results, 'utf8'));
  for (const file of report.testResults) {
    const gpu = /\.(gpu|browser)\.test\.ts$/.test(file.name);
    if (file.assertionResults.length === 0 && file.status === 'failed') failed += 1; // failed to load
    for (const t of file.assertionResults) {
      if (t.status === 'passed') passed += 1;
      else if (t.status === 'failed') failed += 1;
      if (gpu && (t.status === 'passed' || t.status === 'failed')) gpuExecuted += 1;
    }
  }
} catch (e) {
  console.error(`could not read ${results}: ${e}`);
  failed += 1;
}
if (run.status !== 0 && failed === 0) failed = 1; // vitest failed outside any test
console.log(`GPU tests executed: ${gpuExecuted}`);
console.log(`Tests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
