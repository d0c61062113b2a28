/**
 * The README.md of an adapter the app exports: what it was trained on and with, how to load it with
 * PEFT, and the demo notice where the base is the bundled random-weights model.
 */
import { describeTargets } from '../model/lora.ts';
import type { PeftAdapter } from '../model/peft-files.ts';
import { describeSettings } from '../model/sentence-config.ts';
import { DEMO_MODEL_NOTICE, type RunConfig, runSentenceSettings } from './run-config.ts';

export function adapterReadme(adapter: PeftAdapter, config: RunConfig): string {
  const c = adapter.config;
  return `# LoRA adapter trained with qlora-lab
${config.model.kind === 'bundled' ? `\n**${DEMO_MODEL_NOTICE}**\n` : ''}
Base model: ${c.baseModelNameOrPath}${c.revision ? ` (revision ${c.revision})` : ''}, ${config.quantization === 'nf4' ? 'frozen in NF4 (QLoRA)' : 'frozen in f32'}.
LoRA: r=${c.r}, alpha=${c.loraAlpha}, dropout=${c.loraDropout}, rsLoRA=${c.useRslora}, target modules ${describeTargets(c.targetModules)}.
Training: ${config.train.steps} steps, ${config.train.objective.kind}, learning rate ${config.train.learningRate}, batch ${config.train.batchSize}×${config.train.gradientAccumulation}, seeds ${JSON.stringify(config.seeds)}.
Data fingerprint: ${config.data.fingerprint}.${config.frozenAdapter ? `\nTrained on top of the frozen adapter ${config.frozenAdapter.name}: load that adapter first.` : ''}

Load it with PEFT:

    from transformers import AutoModel
    from peft import PeftModel
    base = AutoModel.from_pretrained("${c.baseModelNameOrPath}"${c.revision ? `, revision="${c.revision}"` : ''})
    model = PeftModel.from_pretrained(base, "path/to/this/folder")

Embed as in training: ${describeSettings(runSentenceSettings(config))}.
qlora_lab.json records these settings (pooling, normalize, max_seq_length, prompts), the base revision
and precision; PEFT ignores it, qlora-lab merge reads it.
`;
}
