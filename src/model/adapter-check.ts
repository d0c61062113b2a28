/**
 * The check every LoRA adapter passes where it meets a base model (merge, a stack under training,
 * embedding, evaluation, the app's import): an adapter trained for another base, inconsistent with
 * its own config, or holding Inf/NaN is refused with the tensor and the problem, instead of turning
 * into garbage weights or embeddings.
 */
import type { BertConfig } from './config.ts';
import { type LoraConfig, POOLER_MODULE, TARGETABLE_MODULES, isLinearModule, linearModules, moduleShape, targetsModule } from './lora.ts';
import { type HostTensor, shapeSize } from './state-dict.ts';

/**
 * What the check needs of an adapter: its r, target_modules (PEFT's rule, under the wrapped model's
 * module prefix), and tensors by `${module}.lora_A|B`.
 */
export interface AdapterTensors {
  config: Pick<LoraConfig, 'r' | 'targetModules' | 'modulePrefix'>;
  tensors: ReadonlyMap<string, HostTensor>;
}

/** Problems listed in a message; an adapter for another base can have one per tensor. */
const LISTED = 10;

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;
const isMatrix = (t: HostTensor) => t.shape.length === 2 && t.data.length === shapeSize(t.shape);

/**
 * The adapter on its own: every tensor is a lora_A or lora_B of a BertModel linear (a layer's or the
 * pooler's), each module has both, with rank r, and target_modules covers it. Throws naming
 * `source`, the tensor and the problem.
 */
export function checkAdapterTensors(adapter: AdapterTensors, source: string): void {
  throwProblems(source, pairProblems(adapter).problems);
}

/**
 * The adapter against `bert` (`base.pooler`: whether its checkpoint has BertModel's pooler): what
 * checkAdapterTensors checks, and also that every module is one the base has, target_modules
 * selects some of its linears and names no layer it lacks, each selected module has both halves
 * (but the pooler's, which PEFT loads at B = 0 when absent), the shapes are lora_A [r, in_features]
 * / lora_B [out_features, r] of the base's weight, and every value is finite.
 */
export function checkAdapter(bert: BertConfig, adapter: AdapterTensors, source: string, base: { pooler: boolean }): void {
  const { problems, pairs } = pairProblems(adapter);
  const rule = adapter.config;
  const modules = linearModules(bert, base);
  const inBase = new Set(modules);
  const selected = modules.filter((module) => targetsModule(rule, module));
  // As in PEFT, list entries naming nothing here are fine (configs list several models' names), but
  // not a layer this base lacks: that config was written for a deeper model.
  if (selected.length === 0) {
    problems.push(`target_modules ${JSON.stringify(rule.targetModules)} match none of this model's linear layers (${TARGETABLE_MODULES.join(', ')})`);
  } else if (typeof rule.targetModules !== 'string') {
    for (const t of rule.targetModules) {
      if (namesMissingLayer(bert, rule, t)) problems.push(`target_modules names "${t}", which is none of this model's linear layers (it has ${bert.numHiddenLayers} layers)`);
    }
  }
  const extraLayers = new Set<string>();
  const misfits: string[] = [];
  for (const [module, { a, b }] of pairs) {
    if (module === POOLER_MODULE && !base.pooler) {
      problems.push(`${module}: the adapter has LoRA weights for it but the base checkpoint has no pooler`);
      continue;
    }
    if (!inBase.has(module)) {
      extraLayers.add(`encoder.layer.${module.split('.')[2]}.*`);
      continue;
    }
    const shape = moduleShape(bert, module);
    if (a.shape[1] !== shape.in || b.shape[0] !== shape.out) {
      const r = rule.r;
      misfits.push(`${module}: lora_A ${fmt(a.shape)} / lora_B ${fmt(b.shape)} do not fit the base weight [${shape.out}, ${shape.in}] (expected [${r}, ${shape.in}] / [${shape.out}, ${r}])`);
    }
  }
  if (extraLayers.size > 0) problems.push(`${[...extraLayers].join(', ')}: the base model has only ${bert.numHiddenLayers} layers`);
  problems.push(...misfits);
  for (const module of selected) {
    if (module !== POOLER_MODULE && !adapter.tensors.has(`${module}.lora_A`) && !adapter.tensors.has(`${module}.lora_B`)) {
      problems.push(`${module}: target_modules names it but the adapter has neither lora_A nor lora_B`);
    }
  }
  const nonFinite = nonFiniteProblem(adapter.tensors);
  if (nonFinite) problems.push(nonFinite);
  const otherModel = extraLayers.size > 0 || misfits.length > 0;
  const note = `This model has hidden_size ${bert.hiddenSize}, intermediate_size ${bert.intermediateSize} and ${bert.numHiddenLayers} layers: was the adapter trained for another one?`;
  throwProblems(source, problems, otherModel ? note : undefined);
}

/** Whether a target_modules entry names a layer past the base's last (`encoder.layer.7.attention.self.key` for a 2-layer model). */
function namesMissingLayer(bert: BertConfig, rule: AdapterTensors['config'], target: string): boolean {
  const layer = Number(/(?:^|\.)layer\.(\d+)\./.exec(target)?.[1] ?? -1);
  if (layer < bert.numHiddenLayers) return false;
  const deeper = linearModules({ ...bert, numHiddenLayers: layer + 1 }, { pooler: false });
  return deeper.some((module) => targetsModule({ targetModules: [target], modulePrefix: rule.modulePrefix }, module));
}

/** Problems of the adapter on its own, and its modules whose two halves are both matrices. */
function pairProblems({ config, tensors }: AdapterTensors): { problems: string[]; pairs: Map<string, { a: HostTensor; b: HostTensor }> } {
  const problems: string[] = [];
  const modules = new Set<string>();
  for (const [name, t] of tensors) {
    const m = /^(.+)\.lora_[AB]$/.exec(name);
    if (!m || !isLinearModule(m[1])) {
      problems.push(`${name}: not "<BERT linear module>.lora_A" or ".lora_B"`);
      continue;
    }
    if (!isMatrix(t)) problems.push(`${name}: shape ${fmt(t.shape)} with ${t.data.length} values is not a matrix`);
    modules.add(m[1]);
  }
  const pairs = new Map<string, { a: HostTensor; b: HostTensor }>();
  for (const module of modules) {
    const a = tensors.get(`${module}.lora_A`);
    const b = tensors.get(`${module}.lora_B`);
    if (!a || !b) {
      problems.push(`${module}: has lora_${a ? 'A' : 'B'} but no lora_${a ? 'B' : 'A'}`);
      continue;
    }
    if (!targetsModule(config, module)) problems.push(`${config.modulePrefix ?? ''}${module}: not covered by target_modules ${JSON.stringify(config.targetModules)}`);
    if (!isMatrix(a) || !isMatrix(b)) continue;
    if (a.shape[0] !== config.r || b.shape[1] !== config.r) problems.push(`${module}: lora_A ${fmt(a.shape)} / lora_B ${fmt(b.shape)} do not have rank r = ${config.r}`);
    pairs.set(module, { a, b });
  }
  if (tensors.size === 0) problems.push('no LoRA tensors at all');
  return { problems, pairs };
}

/** The first Inf or NaN (tensor and index) and how many there are, or null when every value is finite. */
export function nonFiniteProblem(tensors: ReadonlyMap<string, HostTensor>): string | null {
  let first: string | null = null;
  let count = 0;
  for (const [name, t] of tensors) {
    for (let i = 0; i < t.data.length; i++) {
      const v = t.data[i];
      if (Number.isFinite(v)) continue;
      count++;
      if (first) continue;
      const cols = t.shape.length === 2 ? t.shape[1] : 0;
      first = `${name}[${cols > 0 ? `${Math.floor(i / cols)}, ${i % cols}` : i}] is ${v}`;
    }
  }
  return first && `${first} (${count} non-finite value${count === 1 ? '' : 's'} in the adapter)`;
}

/** One problem on one line; more as a list of the first few. `note` ends the message. */
export function throwProblems(source: string, problems: string[], note?: string): void {
  if (problems.length === 0) return;
  const end = note ? `\n${note}` : '';
  if (problems.length === 1) throw new Error(`${source}: ${problems[0]}${end}`);
  const listed = problems.slice(0, LISTED);
  const more = problems.length - listed.length;
  throw new Error(`${source} has ${problems.length} problems:\n  ${listed.join('\n  ')}${more > 0 ? `\n  … and ${more} more` : ''}${end}`);
}
