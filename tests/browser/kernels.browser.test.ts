import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterDescription } from '../../src/engine/engine.ts';
import { type BrowserSession, openBrowserSession, runPageModule } from '../helpers/browser.ts';

let session: BrowserSession;
beforeAll(async () => {
  session = await openBrowserSession();
});
afterAll(async () => session?.close());

describe('kernels in headless Chromium (navigator.gpu)', () => {
  it('runs GELU forward/backward on the browser adapter and matches the float64 reference', async () => {
    const result = await runPageModule<{ errY: number; errDx: number; adapter: AdapterDescription }>(
      session,
      '/tests/browser/pages/gelu.page.ts',
    );
    expect(result.adapter.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(result.errY).toBeLessThan(1e-6);
    expect(result.errDx).toBeLessThan(1e-5);
  });
});
