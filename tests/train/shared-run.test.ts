import { describe, expect, it } from 'vitest';
import { checkStatementsFingerprint, labelledStatementsFingerprint, parseStatementLines } from '../../src/data/labelled-statements.ts';
import { checkNoteFingerprints, noteFingerprints } from '../../src/data/notes.ts';
import { RUN_CONFIG_VERSION, defaultRunConfig } from '../../src/train/run-config.ts';
import { type ClinicalRunConfig, type SharedRun, type StatementRunConfig, validateSharedRun } from '../../src/train/shared-run.ts';
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

/** The link's message lists each of `problems`, after the one heading. */
function expectProblems(config: unknown, problems: string[]): void {
  const message = messageOf(() => readShareLink(shareLink(config as SharedRun, 'https://lab.example/')));
  expect(message).toMatch(/^the decoder run configuration is not valid:/);
  for (const problem of problems) expect(message).toContain(problem);
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
    expectProblems(bad, [
      'model.revision must be a non-empty text (got undefined)',
      'data.source.kind must be demo or file (got "url")',
      'data.fingerprint must be a non-empty text (got "")',
      'split must be random or entity (got "half")',
      'steps must be an integer in 1..100000 (got 0)',
      'batchSize must be an integer in 1..1024 (got 2.5)',
      'learningRate must be in (0, 1) (got 3)',
      'seed must be an integer in 0..2³²−1 (got -1)',
    ]);
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

const clinical: ClinicalRunConfig = {
  v: RUN_CONFIG_VERSION,
  kind: 'decoder-clinical',
  model: { kind: 'bundled', id: 'demo-decoder' },
  quantization: 'nf4',
  notes: [
    { name: 'clinic/2024-01 (é).txt', fingerprint: '0123456789abcdef' },
    { name: 'clinic/2024-02.txt', fingerprint: 'fedcba9876543210' },
  ],
  task: { kind: 'file', name: 'task.tsv', fingerprint: '0011223344556677' },
  heldOutShare: 0.25,
  seed: 1,
  steps: 4,
  learningRate: 0.01,
};

describe('shared decoder clinical runs', () => {
  it('round-trips a clinical run on a statements file, and on a CTD dataset, through a share link', () => {
    expect(readShareLink(shareLink(clinical, 'https://lab.example/app/'))).toEqual(clinical);
    const onCtd: ClinicalRunConfig = { ...clinical, task: { kind: 'ctd', source: { kind: 'demo', id: 'mendelian-gene-disease' }, fingerprint: 'aaaabbbbccccdddd' } };
    expect(readShareLink(shareLink(onCtd, 'https://lab.example/'))).toEqual(onCtd);
  });

  it('names every problem of a damaged clinical link', () => {
    const bad = { ...clinical, quantization: 'int8', notes: [{ name: 'a.txt', fingerprint: '' }, { name: 'a.txt', fingerprint: 'x' }, 'b.txt'], task: { kind: 'ctd', source: { kind: 'url' }, fingerprint: 7 }, heldOutShare: 1, steps: 1.5, learningRate: 0, seed: 2 ** 32 };
    expectProblems(bad, [
      'quantization must be nf4 or f32 (got "int8")',
      'notes[0].fingerprint must be a non-empty text (got "")',
      'notes[2] is not a file\'s name and fingerprint',
      'notes names "a.txt" twice',
      'task.source.kind must be demo or file (got "url")',
      'task.fingerprint must be a non-empty text (got 7)',
      'heldOutShare must be in (0, 1) (got 1)',
      'steps must be an integer in 1..100000 (got 1.5)',
      'learningRate must be in (0, 1) (got 0)',
      'seed must be an integer in 0..2³²−1 (got 4294967296)',
    ]);
    expect(messageOf(() => validateSharedRun({ ...clinical, notes: [clinical.notes[0]] }))).toContain('notes must list at least 2 note files (got 1)');
    expect(messageOf(() => validateSharedRun({ ...clinical, task: { kind: 'pairs', fingerprint: 'f' } }))).toContain('task.kind must be file or ctd (got "pairs")');
    const { task: _, ...noTask } = clinical;
    expect(messageOf(() => validateSharedRun(noTask))).toContain('task is missing');
  });
});

describe('the files a clinical link names', () => {
  const documents = [
    { name: 'a.txt', text: 'Heart failure clinic.\n' },
    { name: 'b.txt', text: 'Atrial fibrillation.\n' },
  ];
  const expected = noteFingerprints(documents);

  it('takes the same notes and refuses others, naming each file', () => {
    expect(() => checkNoteFingerprints(documents, expected)).not.toThrow();
    expect(messageOf(() => checkNoteFingerprints([documents[0], { name: 'b.txt', text: 'Atrial flutter.\n' }, { name: 'c.txt', text: 'x' }], [...expected, { name: 'd.txt', fingerprint: 'f' }]))).toBe(
      `These are not the notes the link was made with: missing: d.txt; not in the link's run (remove them): c.txt; b.txt is not the note the link was made with: its text has fingerprint ${noteFingerprints([{ name: 'b.txt', text: 'Atrial flutter.\n' }])[0].fingerprint}, the link expects ${expected[1].fingerprint}. Add the same files (same names, same content).`,
    );
  });

  it('refuses statements that differ in a statement, a label or the order, naming the file', () => {
    const rows = parseStatementLines('A treats B\ttrue\nC treats D\tfalse', 'task.tsv');
    const fingerprint = labelledStatementsFingerprint(rows);
    expect(() => checkStatementsFingerprint('task.tsv', rows, fingerprint)).not.toThrow();
    for (const other of [[rows[0], { ...rows[1], label: true }], [rows[1], rows[0]], [rows[0], { ...rows[1], statement: 'C treats E' }]]) {
      expect(messageOf(() => checkStatementsFingerprint('mine.tsv', other, fingerprint))).toMatch(
        new RegExp(`^These are not the labelled statements the link was made with: mine\\.tsv gives statements with fingerprint [0-9a-f]{16}, the link expects ${fingerprint}\\.`),
      );
    }
  });
});
