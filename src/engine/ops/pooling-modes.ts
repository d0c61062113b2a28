/** The pooling modes of sentence-transformers' Pooling module (apart from the kernels, so model code can name them without loading WGSL). */
export const POOLING_MODES = ['cls', 'mean', 'max', 'mean-sqrt-len', 'weighted-mean', 'last-token'] as const;
export type PoolingMode = (typeof POOLING_MODES)[number];
