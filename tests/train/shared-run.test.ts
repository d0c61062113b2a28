import { describe, expect, it } from 'vitest';
import { RUN_CONFIG_VERSION, defaultRunConfig } from '../../src/train/run-config.ts';
import { type StatementRunConfig, validateSharedRun } from '../../src/train/shared-run.ts';
import { readShareLink, shareLink } from '../../src/ui/share-link.ts';

const statements: StatementRunConfig = {
  v: RUN_CONFIG_VERSION,
  kind: 'decoder-statements',
  model: { kind: 'hub', id: 'HuggingFaceTB/SmolLM2-135M-Instruct', revision: '12fd25f77366fa6b3b4b768ec3050bf629380bac' },
  quantization: 'nf4',
  data: { source: { kind: 'file', name: 'CTD_genes_diseases (ü).tsv.gz' }, fingerprint: '0123456789abcdef' },
  split: 'entity',
  steps: 6,
  batchSize: 8,
  learningRate: 0.01,
  seed: 4294967295,
};

function messageOf(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

describe('shared decoder statements runs', () => {
  it('round-trips a decoder statements run through a share link', () => {
    const link = shareLink(statements, 'https://lab.example/app/#old');
    expect(readShareLink(link)).toEqual(statements);
    const demo = { ...statements, model: { kind: 'bundled' as const, id: 'demo-decoder' }, data: { source: { kind: 'demo' as const, id: 'mendelian-gene-disease' }, fingerprint: 'fedcba9876543210' } };
    expect(readShareLink(shareLink(demo, 'https://lab.example/'))).toEqual(demo);
  });

  it('reads an encoder link made before runs had a kind as the encoder run it was', () => {
    const encoder = defaultRunConfig({ source: { kind: 'demo', id: 'cardiology-pairs' }, build: { kind: 'pairs', testFraction: 0.2 }, fingerprint: '0123456789abcdef', evaluation: { kind: 'test-split' } });
    const old = `https://lab.example/#run=${Buffer.from(JSON.stringify(encoder)).toString('base64url')}`;
    expect(readShareLink(old)).toEqual(encoder);
    expect(validateSharedRun({ ...encoder, kind: 'encoder' })).toEqual({ ...encoder, kind: 'encoder' });
  });

  it('names every problem of a damaged decoder link', () => {
    const bad = { ...statements, model: { kind: 'hub', id: 'x/y' }, data: { source: { kind: 'url' }, fingerprint: '' }, split: 'half', steps: 0, batchSize: 2.5, learningRate: 3, seed: -1 };
    const message = messageOf(() => readShareLink(shareLink(bad as unknown as StatementRunConfig, 'https://lab.example/')));
    expect(message).toMatch(/^the decoder run configuration is not valid:/);
    for (const problem of [
      'model.revision must be a non-empty text (got undefined)',
      'data.source.kind must be demo or file (got "url")',
      'data.fingerprint must be a non-empty text (got "")',
      'split must be random or entity (got "half")',
      'steps must be an integer in 1..100000 (got 0)',
      'batchSize must be an integer in 1..1024 (got 2.5)',
      'learningRate must be in (0, 1) (got 3)',
      'seed must be an integer in 0..2³²−1 (got -1)',
    ]) {
      expect(message).toContain(problem);
    }
    const { data: _, ...noData } = statements;
    expect(messageOf(() => validateSharedRun(noData))).toContain('data is missing');
  });

  it('refuses an unknown kind of run and another version, saying which', () => {
    expect(messageOf(() => validateSharedRun({ ...statements, kind: 'decoder-notes' }))).toBe(
      'this share link is for a kind of run this version of the app does not know ("decoder-notes"); it may come from a newer version',
    );
    expect(messageOf(() => validateSharedRun({ ...statements, v: 2 }))).toBe('this decoder run configuration has version 2; this app reads version 1');
    expect(messageOf(() => readShareLink(shareLink(statements, 'https://lab.example/').slice(0, -9)))).toMatch(/damaged|not valid/);
  });
});
