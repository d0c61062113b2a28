// Bad rows, a wrong format, a truncated gzip download, a pair file with duplicates, one with too few good rows.
import { readBatches } from '../../../src/data/batches.ts';
import { buildPairs } from '../../../src/data/builds.ts';
import { ingest } from '../../../src/data/ingest.ts';
import { blobSource } from '../../../src/data/source.ts';
import { getDataset, listDatasets } from '../../../src/data/store.ts';
import { failure, fetchFile, freshStore, gzip, params, storedCtd } from '../../data/in-page.ts';
import { report } from './report.ts';

report(async () => {
  const db = await freshStore(params(import.meta.url).get('db')!);
  const curated = await fetchFile('CTD_curated_genes_diseases.csv');
  const lines = (await curated.text()).split('\n');

  // 3,000 rows with four broken lines and one repeated row mixed in.
  const rows = lines.slice(0, 29 + 3000);
  rows.splice(100, 0, 'TP53,7157,Li-Fraumeni Syndrome,NOT-AN-ID,marker/mechanism,,'); // line 101
  rows.splice(1500, 0, 'only,three,fields'); // line 1501
  rows.splice(1501, 0, rows[40]); // line 1502: a duplicate of line 41
  rows.splice(2500, 0, 'X,1,"unterminated,MESH:D1,marker/mechanism,,'); // line 2501
  rows.splice(2600, 0, 'Y,2,Some Disease,MESH:D2,maybe,,'); // line 2601
  const messy = await ingest(db, blobSource(new File([rows.join('\n')], 'messy.csv')), { batchRows: 500 });

  const wrongFormat = await failure(() => ingest(db, blobSource(new File(['anchor,positive\na,b\n'], 'pairs.csv')), { kind: 'ctd' }));
  const afterWrongFormat = (await listDatasets(db)).length;

  const cut = await gzip(curated, 0.5);
  const truncated = await failure(() => ingest(db, blobSource(new File([cut], 'CTD_curated_genes_diseases.csv.gz')), { datasetId: 'cut', batchRows: 2000 }));
  const cutMeta = await getDataset(db, 'cut');

  const jsonl = [
    { anchor: 'Aortic stenosis narrows the aortic valve.', positive: 'The aortic valve opening is narrowed in aortic stenosis.', negatives: ['Mitral regurgitation is a leaky mitral valve.'] },
    { anchor: 'Atrial fibrillation is an irregular rhythm.', positive: 'AF is an irregularly irregular rhythm.', negatives: [] },
    { anchor: 'Aortic stenosis narrows the aortic valve.', positive: 'The aortic valve opening is narrowed in aortic stenosis.', negatives: ['Mitral regurgitation is a leaky mitral valve.'] },
  ]
    .map((x) => JSON.stringify(x))
    .concat(['{"anchor": "no positive"}', ...Array.from({ length: 20 }, (_, i) => JSON.stringify({ anchor: `a${i}`, positive: `p${i}`, negatives: [`n${i}`] }))])
    .join('\n');
  const pairs = await ingest(db, blobSource(new File([jsonl], 'cardio.jsonl')), { batchRows: 4 });
  const build = await buildPairs(db, pairs.id, { seed: 9 });
  const contrastive = [];
  for await (const batch of readBatches(db, build.id, 'train', { batchSize: 8, seed: 1, view: 'contrastive' })) contrastive.push(...batch);
  const sentences = await failure(() => readBatches(db, build.id, 'train', { batchSize: 8, seed: 1, view: 'sentences' }).next());

  // An unterminated quote swallows the rest of the file: the build's error names it.
  const swallowed = await ingest(db, blobSource(new File(['anchor,positive\nchest pain,angina\n"syncope,fainting\nAF,af\n'], 'swallowed.csv')));
  const tooFew = await failure(() => buildPairs(db, swallowed.id, { seed: 1 }));
  return {
    messy,
    messyStored: await storedCtd(db, messy.id),
    wrongFormat,
    afterWrongFormat,
    truncated,
    cutMeta,
    cutStored: await storedCtd(db, 'cut'),
    pairs,
    build,
    contrastive,
    sentences,
    tooFew,
  };
});
