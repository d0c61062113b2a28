// Runs the whole vitest suite, then prints the plain summary CI reads as its last line.
// GPU test files are named *.gpu.test.ts (Node + Dawn) or *.browser.test.ts (headless Chromium);
// their executed count is printed so a run without GPU tests is visible.
// A full run (no arguments) also runs the kernel tests and the decoder's PyTorch fixtures on a
// second driver when the machine has one, Mesa's lavapipe (LLVM-compiled, with shader-f16, which SwiftShader lacks; both offer
// subgroups and timestamp queries): kernels must be right on more than one compiler.
// It also runs the embedding and training tests again on a device requested with WebGPU's default
// limits (128 MiB storage binding, 256 MiB buffer, 16 KiB workgroup storage, 8 storage buffers), as
// some devices grant.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';

/** One vitest run; its passed, failed and executed-GPU counts from vitest's JSON report. */
function runVitest(name, args, env) {
  const results = `test-output/vitest-results-${name}.json`;
  const run = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${results}`, ...args], {
    stdio: 'inherit',
    env: { ...process.env, FORCE_COLOR: '0', ...env },
  });
  const counts = { passed: 0, failed: 0, gpuExecuted: 0 };
  try {
    const report = JSON.parse(readFileSync(results, 'utf8'));
    for (const file of report.testResults) {
      const gpu = /\.(gpu|browser)\.test\.ts$/.test(file.name);
      if (file.assertionResults.length === 0 && file.status === 'failed') counts.failed += 1; // failed to load
      for (const t of file.assertionResults) {
        if (t.status === 'passed') counts.passed += 1;
        else if (t.status === 'failed') counts.failed += 1;
        if (gpu && (t.status === 'passed' || t.status === 'failed')) counts.gpuExecuted += 1;
      }
    }
  } catch (e) {
    console.error(`could not read ${results}: ${e}`);
    counts.failed += 1;
  }
  if (run.status !== 0 && counts.failed === 0) counts.failed = 1; // vitest failed outside any test
  return counts;
}

mkdirSync('test-output', { recursive: true });
const args = process.argv.slice(2);
const runs = [{ name: 'main', ...runVitest('main', args, {}) }];
if (args.length === 0 && existsSync(LAVAPIPE_ICD)) {
  console.log(`\nKernel tests on the second driver (lavapipe, ${LAVAPIPE_ICD}):`);
  // Lavapipe compiles each tiled matmul pipeline for 5–20 CPU seconds with an empty shader cache
  // (~/.cache/mesa_shader_cache_db; CI starts cold): llvmpipe runs a shader with barriers as coroutines
  // and LLVM's CoroSplit pass is slow over the tiled kernels (minutes over the loop-expanded ones
  // SwiftShader wants, so lavapipe gets the loops as written: unroll.ts). Its build also reads the
  // transposes and epilogue (and NF4's alignment and double quantisation) from the uniform block
  // instead of pipeline constants (tiledKernel in matmul.ts), so the f32 matmul, NF4, LM-head and
  // decoder tests share about six pipelines instead of ~40: cold, those four files take ~105 CPU
  // seconds on lavapipe (most of it NF4's four pipelines). The decoder's PyTorch fixtures (llama/qwen2/qwen3/phi3, f32 and NF4) run
  // here too: the check is that they pass on both drivers.
  const lavapipe = { VK_ICD_FILENAMES: LAVAPIPE_ICD };
  runs.push({ name: 'lavapipe', ...runVitest('lavapipe', ['tests/engine', 'tests/model/decoder-pytorch.gpu.test.ts'], lavapipe) });
}
if (args.length === 0) {
  console.log('\nEmbedding and training tests on a device with WebGPU\'s default limits:');
  // Not bert-pytorch: its fixtures are far below every default limit, so nothing is planned
  // differently and it runs the kernels of the main pass to the same numbers. The only pipelines it
  // adds to these files' (measured) are three more transpose/accumulate constants of the tiled
  // matmul that training creates here with the same module, lanes and 4 bindings; its ~40 s bought
  // nothing the training tests below do not check under these limits.
  const files = [
    'tests/engine/embedding.gpu.test.ts',
    'tests/model/training.gpu.test.ts',
    'tests/model/device-limits.gpu.test.ts',
  ];
  runs.push({ name: 'default-limits', ...runVitest('default-limits', files, { QLORA_LAB_GPU_LIMITS: 'default' }) });
}
const total = (key) => runs.reduce((n, r) => n + r[key], 0);
for (const r of runs) console.log(`${r.name}: ${r.passed} passed, ${r.failed} failed, ${r.gpuExecuted} GPU tests executed`);
console.log(`GPU tests executed: ${total('gpuExecuted')}`);
console.log(`Tests: ${total('passed')} passed, ${total('failed')} failed`);
process.exit(total('failed') === 0 ? 0 : 1);
