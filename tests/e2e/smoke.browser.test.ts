import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BrowserSession, openBrowserSession } from '../helpers/browser.ts';
import { openApp, screenshot } from './app.ts';

let session: BrowserSession;
beforeAll(async () => {
  session = await openBrowserSession();
});
afterAll(async () => session?.close());

it('renders', async () => {
  const app = await openApp(session);
  await app.page.getByRole('heading', { name: '1. Model' }).waitFor();
  await app.page.waitForTimeout(5000);
  await screenshot(app.page, 'smoke');
  console.log(app.errors);
  console.log(await app.page.locator('main').innerText());
}, 120_000);
