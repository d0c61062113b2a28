/**
 * A run survives what happens to real users, and reproduces: an uninterrupted reference run, then
 * the same configuration (1) interrupted by a page reload and resumed from the offer on the next
 * visit, then hit by a lost GPU device mid-training and resumed automatically, (2) rerun from a share
 * link in a fresh browser profile. Training is deterministic on one GPU, so every loss of (1), and
 * every metric of (2), must equal the reference's exactly.
 */
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BrowserSession } from '../helpers/browser.ts';
import {
  QUICK_RUN,
  type StoredRun,
  evaluatedRun,
  openApp,
  openAppSession,
  screenshot,
  setQuickRun,
  storedRuns,
  waitForCheckpoint,
  waitForDemoReady,
  waitForRunState,
} from './app.ts';

let session: BrowserSession;
let reference: StoredRun;
let referenceContext: BrowserContext;

beforeAll(async () => {
  session = await openAppSession();
  const { page, context } = await openApp(session);
  referenceContext = context;
  await waitForDemoReady(page);
  await setQuickRun(page);
  await page.getByRole('button', { name: 'Start training' }).click();
  await waitForRunState(page, 'done');
  reference = await evaluatedRun(page);
  expect(reference.history).toHaveLength(QUICK_RUN.steps);
}, 900_000);
afterAll(async () => session?.close());

const losses = (run: StoredRun) => run.history.map((s) => s.loss);

// One run meets both interruptions, each from a checkpoint: the tab closing (resumed from the offer
// on the next visit), then the GPU device lost (recovered by itself, on a new device that also evaluates).
it('offers to resume a run after the tab was closed, recovers it from a lost GPU device, and continues it exactly', async () => {
  const { page, context } = await openApp(session);
  await waitForDemoReady(page);
  await setQuickRun(page);
  await page.getByRole('button', { name: 'Start training' }).click();
  await waitForCheckpoint(page, QUICK_RUN.checkpointEvery);
  await page.reload(); // the tab goes away mid-run; the worker with it

  const offer = page.getByRole('region', { name: 'Unfinished training' });
  await offer.waitFor({ timeout: 120_000 });
  await waitForDemoReady(page);
  const [interrupted] = await storedRuns(page);
  expect(interrupted.status).toBe('running');
  expect(interrupted.checkpointStep).toBeGreaterThanOrEqual(QUICK_RUN.checkpointEvery);
  await screenshot(page, '07-resume-offer');
  await offer.getByRole('button', { name: `Resume from step ${interrupted.checkpointStep}` }).click();

  // The resumed run's next checkpoint, then the device goes: it must still have steps to run.
  const recoveryCheckpoint = interrupted.checkpointStep + QUICK_RUN.checkpointEvery;
  expect(recoveryCheckpoint, 'the tab was closed too late to lose the device before the last step').toBeLessThan(QUICK_RUN.steps);
  await waitForCheckpoint(page, recoveryCheckpoint);
  await page.evaluate(() => (globalThis as unknown as { __qloraTest: { loseDevice(): Promise<void> } }).__qloraTest.loseDevice());
  await page.getByTestId('recoveries').waitFor({ timeout: 120_000 });
  await screenshot(page, '09-device-lost-recovering');
  await waitForRunState(page, 'done');
  expect(await page.getByTestId('recoveries').textContent()).toMatch(/^1 /);
  const [finished] = await storedRuns(page);
  expect(finished.id).toBe(interrupted.id);
  expect(finished.status).toBe('done');
  expect(losses(finished)).toEqual(losses(reference));
  // The new device also evaluates: the run gets its metrics.
  await page.getByRole('table', { name: /Base vs adapted model/ }).waitFor({ timeout: 300_000 });
  await screenshot(page, '10-device-recovered');
  await context.close();
}, 900_000);

it('a share link restores the setup in a fresh browser profile and reruns it to identical metrics', async () => {
  const [page] = referenceContext.pages();
  await page.getByRole('button', { name: 'Make a share link' }).click();
  const link = await page.getByLabel('Share link').inputValue();
  expect(link).toMatch(/#run=/);

  const fresh = await openApp(session, new URL(link).pathname + new URL(link).hash);
  const offer = fresh.page.getByRole('region', { name: 'Rerun a shared setup?' });
  await offer.getByText('nothing to download: it comes with this app').waitFor({ timeout: 120_000 });
  await screenshot(fresh.page, '11-share-link-offer');
  await offer.getByRole('button', { name: 'Rerun' }).click();
  await fresh.page.getByRole('status').filter({ hasText: 'Opened from a share link' }).waitFor({ timeout: 120_000 });
  await screenshot(fresh.page, '11-share-link-opened');
  await waitForRunState(fresh.page, 'done', 600_000);
  const rerun = await evaluatedRun(fresh.page);
  expect(rerun.config).toEqual(reference.config);
  expect(losses(rerun)).toEqual(losses(reference));
  expect(rerun.metrics).toEqual(reference.metrics);
  await screenshot(fresh.page, '12-share-link-rerun');
}, 900_000);
