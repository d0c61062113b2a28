/** The data layer's public API: parsers, the IndexedDB store and ingest, builds, batches, the CTD citation. */
export { CTD_CITATION, ctdDiseaseUrl, ctdGeneUrl } from './citation.ts';
export { DataFormatError, DatasetError, StorageFullError, TruncatedInputError } from './errors.ts';
export { type BadRow, readRecords, splitCsv } from './text.ts';
export { type IngestSource, blobSource, openText, urlSource } from './source.ts';
export { type Association, type CtdOptions, type CtdRow, type EvidenceClass, evidenceClass, looksLikeCtd, parseCtd } from './ctd.ts';
export { type LabelledRow, type PairFormat, type PairLayout, type PairRow, type TripletRow, parsePairs } from './pairs.ts';
export { type CtdGraph, GraphBuilder } from './graph.ts';
export {
  type BuildOptions,
  type CtdBuild,
  type CtdBuildStats,
  DEFAULT_TEMPLATE,
  type Example,
  type NegativeMode,
  type PairBuild,
  type PairBuildStats,
  type Split,
  type SplitMode,
  buildCtdDataset,
  buildPairDataset,
  checkTemplate,
  fillTemplate,
  groupingNotes,
} from './builder.ts';
export {
  type BuildMeta,
  type DataDB,
  type DatasetKind,
  type DatasetMeta,
  DATA_DB_NAME,
  type IngestCounts,
  type IngestStatus,
  deleteBuild,
  deleteDataset,
  getDataset,
  listBuilds,
  listDatasets,
  openDataStore,
} from './store.ts';
export { type IngestOptions, type IngestProgress, type RunOptions, ingest, resumeIngest } from './ingest.ts';
export { SHARD_SIZE, buildCtd, buildPairs, loadCtdGraph } from './builds.ts';
export { type BatchOptions, type ContrastivePair, type LabelledPair, type LabelledSentence, type View, type ViewRows, readBatches } from './batches.ts';
