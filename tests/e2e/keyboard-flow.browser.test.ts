/**
 * The guided flow with the keyboard alone: only Tab (and Shift+Tab), Enter, Space and the arrow
 * keys, plus typing a search query. A study preset is chosen with the arrow keys, an Advanced
 * settings drawer opens and closes, the demo preset trains, and every result is reached: the change
 * headline, the maps, the nearest-text search, an export and the run history, where deleting a run
 * asks first and says whether anything was exported from it.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BrowserSession } from '../helpers/browser.ts';
import { openApp, openAppSession, storedRuns, waitForDemoReady, waitForRunState } from './app.ts';

let session: BrowserSession;
beforeAll(async () => {
  session = await openAppSession();
});
afterAll(async () => session?.close());

/** The focused element, described for assertions and failure messages. */
function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return '<body>';
    const name = el.getAttribute('aria-label') ?? (el.id ? document.querySelector(`label[for="${el.id}"]`)?.textContent : null) ?? el.textContent ?? '';
    return `${el.tagName.toLowerCase()}: ${name.replace(/\s+/g, ' ').trim().slice(0, 80)}`;
  });
}

/**
 * Press Tab (Shift+Tab when `back`) until the focused element matches the CSS `selector` (and has
 * the text `text`, when given); fails with the stops it passed.
 */
async function tabTo(page: Page, selector: string, options: { text?: string; back?: boolean } = {}, maxStops = 200): Promise<void> {
  const stops: string[] = [];
  for (let i = 0; i < maxStops; i++) {
    await page.keyboard.press(options.back ? 'Shift+Tab' : 'Tab');
    const reached = await page.evaluate(
      ([s, text]) => {
        const el = document.activeElement;
        return !!el?.matches(s) && (text === null || el.textContent?.trim() === text);
      },
      [selector, options.text ?? null] as const,
    );
    if (reached) return;
    stops.push(await focused(page));
  }
  throw new Error(`${selector}${options.text ? ` "${options.text}"` : ''} not reached in ${maxStops} Tab stops: ${stops.join(' | ')}`);
}

it('goes through the whole guided flow with the keyboard alone', async () => {
  const { page } = await openApp(session);
  await waitForDemoReady(page);
  const checkedPreset = () => page.evaluate(() => (document.querySelector('input[name="guided-preset"]:checked') as HTMLInputElement | null)?.id ?? null);

  // 1 Choose data: Tab reaches the checked preset; the arrow keys choose another and come back.
  await tabTo(page, 'input[name="guided-preset"]');
  expect(await checkedPreset()).toBe('preset-demo');
  await page.keyboard.press('ArrowDown');
  await expect.poll(checkedPreset).toBe('preset-cardiology');
  await page.keyboard.press('ArrowUp');
  await expect.poll(checkedPreset).toBe('preset-demo');
  await page.getByText(/^Training on Cardiology anchor\/paraphrase pairs/).waitFor();

  // 2 Train: the hyperparameter drawer opens and closes from the keyboard; then Start.
  await tabTo(page, '#train details.advanced > summary');
  await page.keyboard.press('Enter');
  expect(await page.locator('#train details.advanced').getAttribute('open')).not.toBeNull();
  await page.keyboard.press('Enter');
  expect(await page.locator('#train details.advanced').getAttribute('open')).toBeNull();
  await tabTo(page, '#train-start');
  await page.keyboard.press('Enter');
  await waitForRunState(page, 'training', 60_000);
  await expect.poll(() => focused(page)).toBe('button: Pause');
  await waitForRunState(page, 'done');

  // 3 See what changed: the headline, the maps (each canvas a Tab stop), the search, an export, the history.
  const headline = page.getByTestId('headline');
  await headline.waitFor({ timeout: 300_000 });
  expect(await headline.textContent()).toMatch(/Before training .* after training .*: (a clear increase|a clear decrease|no clear change)/);
  // The evaluation disabled Start for a while; the focus came back to it rather than staying on <body>.
  await expect.poll(() => focused(page)).toBe('button: Start training');
  await tabTo(page, 'button', { text: 'Draw the maps' });
  await page.keyboard.press('Enter');
  await expect.poll(() => page.getByRole('figure', { name: /t-SNE map/ }).count(), { timeout: 300_000 }).toBe(2);
  await tabTo(page, 'canvas');
  await tabTo(page, '#explore-query');
  await page.keyboard.type('aortic valve stenosis');
  await page.keyboard.press('Enter');
  await expect.poll(() => page.getByRole('list', { name: 'Nearest under the adapted model' }).getByRole('listitem').count(), { timeout: 120_000 }).toBe(5);

  // Deleting the run asks first; nothing was exported yet, and the question says so. "Keep it" keeps it.
  const deleteButton = 'button[aria-label^="Delete run of"]';
  await tabTo(page, deleteButton);
  await page.keyboard.press('Enter');
  const question = page.locator('#delete-question');
  expect(await question.textContent()).toMatch(/nothing was exported from it in this visit/);
  expect(await focused(page)).toBe('button: Keep it');
  await page.keyboard.press('Space');
  expect(await question.count()).toBe(0);
  expect(await page.evaluate((s) => document.activeElement?.matches(s), deleteButton)).toBe(true);
  expect(await storedRuns(page)).toHaveLength(1);

  // Export the adapter, then delete: the question no longer warns, and "Yes" deletes.
  await tabTo(page, 'button', { text: 'PEFT adapter (zip)', back: true });
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.keyboard.press('Enter')]);
  expect(download.suggestedFilename()).toMatch(/-adapter-peft\.zip$/);
  await tabTo(page, deleteButton);
  await page.keyboard.press('Enter');
  expect(await question.textContent()).not.toMatch(/nothing was exported/);
  await page.keyboard.press('Shift+Tab');
  expect(await focused(page)).toBe('button: Yes, delete the run');
  await page.keyboard.press('Enter');
  await expect.poll(() => storedRuns(page).then((runs) => runs.length)).toBe(0);
  // The row is gone; the keyboard user's place is the history's heading, not <body>.
  await expect.poll(() => focused(page)).toBe('h3: Run history');
}, 900_000);
