/**
 * The check every decoder LoRA adapter passes before it is used or written: against the decoder's
 * linear modules (canonical ones, or the checkpoint's fused ones for a PEFT file of Phi-3),
 * target_modules selects some, every tensor is a lora_A or lora_B of a selected module, each
 * selected module has both, with rank r and the module's in/out features, and every value is
 * finite. Problems name the tensor, so an adapter made for another model is refused before the GPU starts.
 */
import { nonFiniteProblem, throwProblems } from './adapter-check.ts';
import type { DecoderConfig } from './decoder-config.ts';
import { type LoraConfig, describeTargets, targetsModule } from './lora.ts';
import type { HostTensor } from './state-dict.ts';

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** Returns the selected modules' names, in `modules`' order; throws naming `source` and every problem. */
export function checkDecoderAdapter(
  config: DecoderConfig,
  modules: readonly { name: string; in: number; out: number }[],
  adapter: { config: Pick<LoraConfig, 'r' | 'targetModules'>; tensors: ReadonlyMap<string, HostTensor> },
  source: string,
): string[] {
  const { r, targetModules } = adapter.config;
  const selected = modules.filter((m) => targetsModule({ targetModules }, m.name));
  if (selected.length === 0) {
    const linears = [...new Set(modules.map((m) => m.name.slice(m.name.lastIndexOf('.') + 1)))].join(', ');
    throw new Error(`${source}: target_modules ${describeTargets(targetModules)} match none of this decoder's linear layers (${linears})`);
  }
  const expected = new Map<string, number[]>();
  for (const m of selected) {
    expected.set(`${m.name}.lora_A`, [r, m.in]);
    expected.set(`${m.name}.lora_B`, [m.out, r]);
  }
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const t = adapter.tensors.get(name);
    if (!t) problems.push(`${name}: missing (target_modules selects the module)`);
    else if (fmt(t.shape) !== fmt(shape) || t.data.length !== shape[0] * shape[1]) problems.push(`${name}: shape ${fmt(t.shape)}, expected ${fmt(shape)} (rank r = ${r})`);
    else {
      const nonFinite = nonFiniteProblem(new Map([[name, t]]));
      if (nonFinite) problems.push(`${name}: holds a non-finite value (${nonFinite})`);
    }
  }
  for (const name of adapter.tensors.keys()) if (!expected.has(name)) problems.push(`${name}: not a lora_A or lora_B of a module target_modules selects in this decoder`);
  const note = `This decoder has ${config.numHiddenLayers} layers, hidden_size ${config.hiddenSize}, intermediate_size ${config.intermediateSize}: was the adapter made for another model?`;
  throwProblems(source, problems, problems.length > 0 ? note : undefined);
  return selected.map((m) => m.name);
}
