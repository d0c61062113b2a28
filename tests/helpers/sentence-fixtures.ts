/** Readers for the committed sentence-transformers fixtures (tests/fixtures/README.md, "sentence-transformers folders"). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PoolingMode } from '../../src/engine/ops/pooling.ts';
import { FIXTURES } from './fixtures.ts';

export const SENTENCE_FIXTURES = ['bge', 'minilm', 'e5', 'gte', 'instructor'] as const;
export type SentenceFixture = (typeof SENTENCE_FIXTURES)[number];

export interface TorchPoolingCase {
  mode: PoolingMode;
  batch: number;
  seq: number;
  width: number;
  hidden: number[];
  mask: number[];
  dOut: number[];
  out: number[];
  dHidden: number[];
}

export function sentencePoolingFixture(): { cases: TorchPoolingCase[] } {
  return JSON.parse(readFileSync(join(FIXTURES, 'sentence', 'pooling.json'), 'utf8'));
}

export function sentenceModelDir(name: SentenceFixture): string {
  return join(FIXTURES, 'sentence', name);
}

/** What sentence-transformers' encode() gives for one role: none (encode), query (encode_query), passage (encode_document). */
export interface RoleReference {
  prompt: string | null;
  /** [CLS] + the prompt's tokens, as sentence-transformers counts them; null without a prompt. */
  prompt_length: number | null;
  /** Each text's input ids, padding removed. */
  input_ids: number[][];
  embeddings: number[][];
}

export interface SentenceReference {
  texts: string[];
  settings: { pooling: PoolingMode; normalize: boolean; max_seq_length: number; do_lower_case: boolean; include_prompt: boolean };
  roles: Record<'none' | 'query' | 'passage', RoleReference>;
}

export function sentenceReference(name: SentenceFixture): SentenceReference {
  return JSON.parse(readFileSync(join(FIXTURES, 'sentence', 'reference', `${name}.json`), 'utf8'));
}
