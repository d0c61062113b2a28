/** Page-module side of runPageModule: publish a result or an error for the test to read. */
export function report(run: () => Promise<unknown>): void {
  const g = globalThis as { __testResult?: unknown; __testError?: string };
  run().then(
    (result) => (g.__testResult = result ?? null),
    (error: unknown) => (g.__testError = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack}` : String(error)),
  );
}

/** Resolve once the scatter in `target` has drawn its points (it loads three.js first), plus two frames. */
export async function scatterDrawn(target: Element): Promise<void> {
  while (!target.querySelector('[data-drawn="true"]')) await new Promise((r) => requestAnimationFrame(r));
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
}
