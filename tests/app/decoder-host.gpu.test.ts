/**
 * The app's decoder (src/app/decoder-host.ts) on the bundled demo decoder: its summary, answers side
 * by side equal to the library's generation (base, and with an adapter), streamed token by token,
 * Stop ending both answers with every KV cache released, and a lost device named.
 */
import { describe, expect, it } from 'vitest';
import { DecoderHost } from '../../src/app/decoder-host.ts';
import type { AnswersRequest, SessionEvent } from '../../src/app/protocol.ts';
import { parseDecoderConfig } from '../../src/model/decoder-config.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { readFileSync } from 'node:fs';
import { gpuEngine, testEngine } from '../helpers/gpu.ts';
import { libraryAnswer } from '../helpers/library-answer.ts';
import { tinyDecoderAdapterFiles } from '../helpers/tiny-decoder.ts';

const FOLDER = 'public/models/demo-decoder';
const REQUEST: AnswersRequest = { prompt: 'the heart is', chat: true, maxNewTokens: 6, temperature: 0.8, topP: 0.9, seed: 5 };
const ADAPTER = tinyDecoderAdapterFiles(parseDecoderConfig(JSON.parse(readFileSync(`${FOLDER}/config.json`, 'utf8'))), 7);

const open = async () => DecoderHost.open(await gpuEngine(), localDirSource(FOLDER), 'demo-decoder', 'nf4');

describe('DecoderHost', () => {
  it('summarises the demo decoder as a Llama decoder', async () => {
    const host = await open();
    expect(host.summary()).toEqual({
      label: 'demo-decoder',
      family: 'llama',
      layers: 2,
      hidden: 32,
      heads: 4,
      kvHeads: 2,
      intermediate: 48,
      vocab: 272,
      maxPositions: 128,
      parameters: 2 * 272 * 32 + 32 + 2 * (2 * 32 + 32 * 32 * 2 + 32 * 16 * 2 + 3 * 32 * 48),
      quantization: 'nf4',
      chatTemplate: true,
    });
    host.destroy();
  });

  it("answers from the base alone without an adapter, and from base and adapter side by side, as the library generates, streamed", async () => {
    const engine = await gpuEngine();
    const host = await open();
    const events: SessionEvent[] = [];
    const alone = await host.answers(REQUEST, (e) => events.push(e));
    const base = await libraryAnswer(engine, FOLDER, { ...REQUEST, quantization: 'nf4' });
    expect(alone).toEqual({ promptTokens: expect.any(Number), base: { ...base, end: base.tokens === REQUEST.maxNewTokens ? 'length' : 'stop token' } });
    expect(events.every((e) => e.type === 'answer' && e.pane === 'base')).toBe(true);
    expect(events.at(-1)).toEqual({ type: 'answer', pane: 'base', text: base.text, tokens: base.tokens });

    expect(host.setAdapter(ADAPTER, 'tiny-adapter')).toMatch(/^tiny-adapter: .*4/);
    events.length = 0;
    const both = await host.answers(REQUEST, (e) => events.push(e));
    const adapted = await libraryAnswer(engine, FOLDER, { ...REQUEST, quantization: 'nf4', adapter: ADAPTER });
    expect(both.base.text).toBe(base.text);
    expect(both.adapted).toMatchObject(adapted);
    expect(adapted.text).not.toBe(base.text);
    // Turns alternate, so both panes fill together.
    expect(events.slice(0, 2).map((e) => e.type === 'answer' && e.pane)).toEqual(['base', 'adapted']);
    host.destroy();
  });

  it('Stop ends both answers and releases their KV caches', async () => {
    const engine = await gpuEngine();
    const host = await open();
    host.setAdapter(ADAPTER, 'tiny-adapter');
    const stopAtTwo = () =>
      host.answers({ ...REQUEST, maxNewTokens: 100, temperature: 0 }, (e) => {
        if (e.type === 'answer' && e.tokens === 2) host.stop();
      });
    await stopAtTwo(); // the engine keeps a few small buffers per new shape: made here, once
    const before = engine.liveBytes;
    const result = await stopAtTwo();
    expect(result.base).toMatchObject({ end: 'stopped', tokens: 2 });
    expect(result.adapted?.end).toBe('stopped');
    expect(result.adapted!.tokens).toBeLessThanOrEqual(2);
    expect(engine.liveBytes).toBe(before);
    await expect(host.answers({ ...REQUEST, prompt: '  ' }, () => {})).rejects.toThrow('Write a prompt first.');
    host.destroy();
  });

  it('after a lost device, says to load the decoder again', async () => {
    const engine = await testEngine();
    const host = await DecoderHost.open(engine, localDirSource(FOLDER), 'demo-decoder', 'nf4');
    engine.device.destroy();
    await engine.device.lost;
    await expect(host.answers(REQUEST, () => {})).rejects.toThrow('The GPU device was lost since demo-decoder was loaded, and the decoder with it: load it again.');
    expect(() => host.setAdapter(ADAPTER, 'tiny-adapter')).toThrow(/device was lost/);
  });
});

