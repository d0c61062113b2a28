/**
 * The decoder part of `npm run bench -- memory`: planned estimates for real decoders' shapes, and
 * the measured peak of a training step ÷ its estimate on 2-layer models of the same widths.
 *
 * Targets (issue 13) for NF4 + LoRA r 16 on every linear, 8 sequences × 256 tokens per step:
 * Qwen2.5-0.5B ≤ 1.5 GiB, Llama-3.2-1B ≤ 2.5 GiB, Phi-3-mini ≤ 3.5 GiB. The plan chooses the
 * fastest micro-batch size (gradient accumulation) × activation checkpoint interval that fits, with
 * f32 embeddings and head first, else f16 ones (half the 0.73 GiB of Phi-3-mini's embeddings and
 * untied head; Qwen2.5's tied table 545 MB → 272 MB). Phi-3-mini's NF4 layers are 1.7 GiB, LoRA on
 * all 224 linears with gradients and AdamW 0.45 GiB; without checkpointing its 32 layers would keep
 * 1.7 GiB of activations for one sequence of 256 tokens, with every layer checkpointed only their inputs.
 */
import type { Engine } from '../../src/engine/engine.ts';
import { type DecoderMemoryPlan, describeDecoderPlan, estimateDecoderTrainingMemory, planDecoderTraining } from '../../src/model/decoder-memory.ts';
import { DECODER_BENCH_BASE, DECODER_BENCH_LORA, DECODER_BENCH_MODELS, type DecoderBenchModel, decoderBenchBatch, decoderBenchConfig, decoderBenchTrainer } from './random-decoder.ts';

const GIB = 2 ** 30;
const STEP = { sequences: 8, seq: 256 };
const TARGET_GIB: Record<DecoderBenchModel, number> = { qwen25_05b: 1.5, llama32_1b: 2.5, phi3_mini: 3.5 };

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Each model's plan within its target as the budget: est_gib_<model> and <model>_plan. */
export function decoderEstimates(): { figures: Record<string, unknown>; plans: Record<DecoderBenchModel, DecoderMemoryPlan> } {
  const figures: Record<string, unknown> = {};
  const plans = {} as Record<DecoderBenchModel, DecoderMemoryPlan>;
  for (const model of DECODER_BENCH_MODELS) {
    const budgetBytes = TARGET_GIB[model] * GIB;
    const plan = planDecoderTraining({ config: decoderBenchConfig(model), lora: DECODER_BENCH_LORA, shape: STEP, base: DECODER_BENCH_BASE, budgetBytes, storages: ['f32', 'f16'] });
    console.log(`${model}, ${STEP.sequences} × ${STEP.seq}, target ${TARGET_GIB[model]} GiB: ${describeDecoderPlan(plan, budgetBytes)}`);
    plans[model] = plan;
    figures[`est_gib_${model}`] = +(plan.estimate.total / GIB).toFixed(3);
    figures[`${model}_plan`] = { micro_batch: plan.microBatch, micro_batches: plan.microBatches, checkpoint_every: plan.checkpointEvery, base_parts: plan.baseParts, fits_target: plan.fits };
  }
  return { figures, plans };
}

/**
 * One training step of a 2-layer model of each width (random weights) with the model's planned
 * micro-batch and checkpoint interval, or `shape` where given (slow emulated GPUs); measured peak ÷
 * estimate per model.
 */
export async function measureDecoderPeaks(engine: Engine, plans: Record<DecoderBenchModel, DecoderMemoryPlan>, shape: { sequences?: number; seq?: number }): Promise<Record<string, unknown>> {
  const figures: Record<string, unknown> = {};
  for (const model of DECODER_BENCH_MODELS) {
    const config = decoderBenchConfig(model, 2);
    const micro = { sequences: shape.sequences ?? plans[model].microBatch, seq: shape.seq ?? STEP.seq };
    log(`${model} width, 2 layers: loading random weights…`);
    const { checkpointEvery, baseParts } = plans[model];
    const { trainer, release } = await decoderBenchTrainer(engine, config, 31, { checkpointEvery, baseParts });
    engine.peakBytes = engine.liveBytes;
    log(`${model} width, 2 layers: one step of ${micro.sequences} × ${micro.seq}…`);
    await trainer.trainStep([decoderBenchBatch(config, micro.sequences, micro.seq, 32)]);
    const measured = engine.peakBytes;
    release();
    const estimate = estimateDecoderTrainingMemory(config, DECODER_BENCH_LORA, micro, { ...DECODER_BENCH_BASE, baseParts }, { checkpointEvery, maxBindingBytes: engine.maxBindingBytes }).total;
    console.log(`${model} width, 2 layers, ${micro.sequences} × ${micro.seq}: measured peak ${(measured / 2 ** 20).toFixed(1)} MiB, estimate ${(estimate / 2 ** 20).toFixed(1)} MiB`);
    figures[`measured_over_estimate_${model}_2l`] = +(measured / estimate).toFixed(3);
    figures[`measured_peak_bytes_${model}_2l`] = measured;
    figures[`measured_step_${model}_2l`] = `${micro.sequences} × ${micro.seq}${checkpointEvery > 0 ? `, 1 layer in ${checkpointEvery} checkpointed` : ''}`;
  }
  return figures;
}
