/** Page-module side of runBenchPage: the parameters the benchmark handed over. */
export function benchParams<T>(): T {
  const params = (globalThis as { __benchParams?: T }).__benchParams;
  if (params === undefined) throw new Error('this page expects parameters from bench/lib/browser.ts runBenchPage');
  return params;
}
