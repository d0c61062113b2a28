import { describe, expect, it } from 'vitest';
import { STUDY_PRESETS, defaultRunConfig, validateRunConfig } from '../../src/train/run-config.ts';
import { readShareLink, shareLink } from '../../src/ui/share-link.ts';

const demo = defaultRunConfig({
  source: { kind: 'demo', id: 'cardiology-pairs' },
  build: { kind: 'pairs', testFraction: 0.2 },
  fingerprint: '0123456789abcdef',
  evaluation: { kind: 'demo', id: 'cardiology-eval' },
});

describe('share links', () => {
  it('round-trips a full configuration, including non-ASCII text', () => {
    const config = {
      ...STUDY_PRESETS[1].apply(demo),
      model: { kind: 'hub' as const, id: 'BAAI/bge-small-en-v1.5', revision: '5c38ec7c405ec4b44b94cc5a9bb96e735b38267a' },
      data: {
        source: { kind: 'file' as const, name: 'CTD_curated_genes_diseases — copie (ü).tsv.gz' },
        build: { kind: 'ctd' as const, negatives: 'hard' as const, split: 'entity' as const, testFraction: 0.2, template: '{GeneSymbol} is associated with {DiseaseName}' },
        fingerprint: 'fedcba9876543210',
        evaluation: { kind: 'test-split' as const },
      },
      seeds: { init: 7, train: 8, data: 9, eval: 4294967295 },
    };
    const link = shareLink(config, 'https://lab.example/app/?x=1#old');
    expect(link.startsWith('https://lab.example/app/?x=1#run=')).toBe(true);
    expect(link).not.toMatch(/[+/=]$/);
    expect(readShareLink(link)).toEqual(config);
  });

  it('returns null for a page URL without a configuration', () => {
    expect(readShareLink('https://lab.example/')).toBeNull();
    expect(readShareLink('https://lab.example/#section')).toBeNull();
  });

  it('rejects a damaged link with a message', () => {
    const link = shareLink(demo, 'https://lab.example/');
    expect(() => readShareLink(link.slice(0, link.length - 7))).toThrow(/damaged|not valid/);
    expect(() => readShareLink('https://lab.example/#run=%%%')).toThrow(/damaged/);
  });

  it('lists every invalid field of a tampered configuration', () => {
    const bad = {
      ...demo,
      lora: { ...demo.lora, r: 0, targetModules: ['query', 'pooler'] },
      train: { ...demo.train, learningRate: -1 },
      data: { ...demo.data, fingerprint: '' },
    };
    const link = shareLink(bad as typeof demo, 'https://lab.example/');
    const error = (() => {
      try {
        readShareLink(link);
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(error).toMatch(/rank r must be an integer/);
    expect(error).toMatch(/unknown modules: pooler/);
    expect(error).toMatch(/train\.learningRate must be in \(0, 1\)/);
    expect(error).toMatch(/data\.fingerprint must be a non-empty text/);
  });

  it('carries the sentence settings; a link made before prompts were recorded reads as no prompts', () => {
    const e5 = { ...demo, pooling: 'weighted-mean' as const, normalize: false, maxLength: 512, prompts: { query: 'query: ', passage: 'passage: ' } };
    expect(readShareLink(shareLink(e5, 'https://lab.example/'))).toEqual(e5);
    const { prompts: _, ...older } = demo;
    expect(validateRunConfig(older).prompts).toEqual({ query: '', passage: '' });
    expect(() => validateRunConfig({ ...demo, pooling: 'median' })).toThrow(/pooling must be one of cls, mean, max, mean-sqrt-len, weighted-mean, last-token \(got "median"\)/);
    expect(() => validateRunConfig({ ...demo, prompts: { query: 1 } })).toThrow(/prompts must be \{query, passage\}/);
  });

  it('refuses another version', () => {
    expect(() => validateRunConfig({ ...demo, v: 2 })).toThrow(/version 2/);
  });

  it('study presets set what their names say', () => {
    const cardiology = STUDY_PRESETS.find((p) => p.name.startsWith('cardiology'))!.apply(demo);
    expect(cardiology.lora).toMatchObject({ r: 16, alpha: 32, targetModules: ['query', 'value'] });
    expect(cardiology.train.objective.kind).toBe('infonce');
    const ctd = STUDY_PRESETS.find((p) => p.name.startsWith('CTD'))!.apply({ ...demo, quantization: 'f32' });
    expect(ctd.lora).toMatchObject({ r: 16, alpha: 32 });
    expect(ctd.quantization).toBe('nf4');
  });
});
