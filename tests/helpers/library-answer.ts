/**
 * What the library generates for a prompt, straight from decoder-generate.ts (no app code): the
 * expected text of the app's answers side by side, base or with an adapter.
 */
import type { AnswersRequest } from '../../src/app/protocol.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { generateTokens, stopTokensOf } from '../../src/model/decoder-generate.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { readDecoderPeftAdapter } from '../../src/model/decoder-peft.ts';
import { DecoderModel } from '../../src/model/decoder.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { type PeftAdapterFiles, loraConfigOf } from '../../src/model/peft-files.ts';

export interface LibraryAnswerOptions extends AnswersRequest {
  quantization: 'nf4' | 'f32';
  /** Generate with this adapter on the base. */
  adapter?: PeftAdapterFiles;
}

/** The decoder folder's answer: the generated tokens up to (not including) a stop token, decoded without special tokens. */
export async function libraryAnswer(engine: Engine, folder: string, o: LibraryAnswerOptions): Promise<{ text: string; tokens: number }> {
  const files = await openDecoderModel(localDirSource(folder));
  const model = await DecoderModel.create(engine, files.config, files.weights, { quantization: o.quantization });
  try {
    if (o.adapter) {
      const peft = readDecoderPeftAdapter(o.adapter, files.config);
      model.adapters = [createDecoderAdapter(engine, files.config, loraConfigOf(peft), peft.tensors, false)];
    }
    const { tokenizer, config } = files;
    const ids = o.chat ? tokenizer.applyChatTemplate([{ role: 'user', content: o.prompt }], { addGenerationPrompt: true }).ids : tokenizer.encode(o.prompt);
    const stops = stopTokensOf(config, tokenizer);
    const generated: number[] = [];
    for await (const token of generateTokens(model, ids, { maxNewTokens: o.maxNewTokens, temperature: o.temperature, topP: o.topP, seed: o.seed, stopTokenIds: stops })) {
      if (stops.includes(token)) break;
      generated.push(token);
    }
    return { text: tokenizer.decode(generated, { skipSpecialTokens: true }), tokens: generated.length };
  } finally {
    model.destroy();
  }
}
