/**
 * AdamW exactly as torch.optim.AdamW (decoupled weight decay, bias-corrected moments, eps added to
 * √v̂), after torch.nn.utils.clip_grad_norm_ over all gradients. Everything runs on the GPU inside the
 * open batch: the global norm is reduced deterministically into a 1-element tensor the update reads.
 */
import adamwSource from '../../../shaders/adamw.wgsl?raw';
import { type Engine, Params, ceilDiv } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { type Tensor, numel } from '../tensor.ts';
import { expectShape } from './check.ts';
import { dispatchFolded, dispatchPerElement } from './launch.ts';
import { workgroupKernelFamily } from './reductions.ts';

const kernel = workgroupKernelFamily('adamw', adamwSource);

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this (torch's max_norm), or null for no clipping. */
  maxGradNorm: number | null;
  /** 1-based step number (bias correction). */
  step: number;
}

const PARTIALS = kernel('grad_sq_partials', ['read', 'read_write']);
const FINISH = kernel('grad_norm_finish', ['read', 'read_write']);
const UPDATE = kernel('adamw_update', ['read', 'read', 'read_write', 'read_write', 'read_write']);
const CHUNK = 1024; // elements per partial sum, as in adamw.wgsl

function checkHyper(h: AdamWHyper): void {
  const bad = (what: string, value: unknown) => new ShapeError(`AdamW.step: ${what}, got ${value}`);
  if (!(Number.isFinite(h.lr) && h.lr >= 0)) throw bad('lr must be a finite number ≥ 0', h.lr);
  if (!(h.beta1 >= 0 && h.beta1 < 1)) throw bad('beta1 must be in [0, 1)', h.beta1);
  if (!(h.beta2 >= 0 && h.beta2 < 1)) throw bad('beta2 must be in [0, 1)', h.beta2);
  if (!(Number.isFinite(h.eps) && h.eps > 0)) throw bad('eps must be a finite number > 0', h.eps);
  if (!(Number.isFinite(h.weightDecay) && h.weightDecay >= 0)) throw bad('weightDecay must be a finite number ≥ 0', h.weightDecay);
  if (h.maxGradNorm !== null && !(Number.isFinite(h.maxGradNorm) && h.maxGradNorm > 0)) {
    throw bad('maxGradNorm must be null or a finite number > 0', h.maxGradNorm);
  }
  if (!(Number.isInteger(h.step) && h.step >= 1)) throw bad('step must be an integer ≥ 1', h.step);
}

export class AdamW {
  /** [1]: the global L2 norm of the last step's gradients, before clipping. */
  readonly gradNorm: Tensor;
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  /** One partial sum of squares per CHUNK elements of each gradient, tensors back to back. */
  private readonly partials: Tensor;
  private readonly partialOffsets: number[] = [];
  private released = false;

  constructor(
    private readonly engine: Engine,
    private readonly params: Tensor[],
  ) {
    if (params.length === 0) throw new ShapeError('AdamW: no parameters to optimise');
    params.forEach((p, i) => {
      if (p.dtype !== 'f32') throw new ShapeError(`AdamW: params[${i}] must be f32, got ${p.dtype}`);
      const first = params.findIndex((q) => q.buffer === p.buffer);
      if (first !== i) throw new ShapeError(`AdamW: params[${i}] is the same buffer as params[${first}]`);
    });
    let partialCount = 0;
    for (const p of params) {
      this.partialOffsets.push(partialCount);
      partialCount += ceilDiv(numel(p.shape), CHUNK);
    }
    this.m = params.map((p) => engine.alloc(p.shape, 'f32', true));
    this.v = params.map((p) => engine.alloc(p.shape, 'f32', true));
    this.partials = engine.alloc([partialCount]);
    this.gradNorm = engine.alloc([1], 'f32', true);
  }

  /**
   * Record one optimiser step for `grads` (one per parameter, same shapes). Grads are read, not
   * modified. If any gradient holds a NaN or ±Inf the global norm is non-finite and the update is
   * skipped on the GPU (parameters and moments keep their values; gradNorm shows the bad norm), where
   * torch would write NaNs into the parameters.
   */
  step(grads: Tensor[], hyper: AdamWHyper): void {
    if (this.released) throw new ShapeError('AdamW.step: the optimiser was released');
    if (grads.length !== this.params.length) {
      throw new ShapeError(`AdamW.step: got ${grads.length} gradients for ${this.params.length} parameters`);
    }
    grads.forEach((g, i) => {
      expectShape('AdamW.step', `grads[${i}]`, g, this.params[i].shape);
      const owned = this.params.findIndex((p) => p.buffer === g.buffer);
      if (owned >= 0) throw new ShapeError(`AdamW.step: grads[${i}] is the same buffer as params[${owned}]`);
    });
    checkHyper(hyper);
    const { engine } = this;
    grads.forEach((g, i) => {
      const n = numel(g.shape);
      const params = new Params().u32(n, this.partialOffsets[i]).build();
      dispatchFolded(engine, PARTIALS(engine), params, [g.buffer, this.partials.buffer], ceilDiv(n, CHUNK));
    });
    engine.dispatch(FINISH(engine), new Params().u32(numel(this.partials.shape)).build(), [this.partials.buffer, this.gradNorm.buffer], [1]);
    const { lr, beta1, beta2, eps, weightDecay, maxGradNorm, step } = hyper;
    // Scalars as torch forms them (float64, then applied to float32 tensors).
    const stepSize = lr / (1 - beta1 ** step);
    const bias2Sqrt = Math.sqrt(1 - beta2 ** step);
    grads.forEach((g, i) => {
      const n = numel(g.shape);
      const params = new Params()
        .u32(n, Number(maxGradNorm !== null))
        .f32(maxGradNorm ?? 0, 1 - lr * weightDecay, beta1, 1 - beta1, beta2, 1 - beta2, stepSize, bias2Sqrt, eps)
        .build();
      dispatchPerElement(engine, UPDATE(engine), params, [g.buffer, this.gradNorm.buffer, this.params[i].buffer, this.m[i].buffer, this.v[i].buffer], n);
    });
  }

  /** The first and second moment tensors, in parameter order. */
  state(): { m: Tensor[]; v: Tensor[] } {
    return { m: [...this.m], v: [...this.v] };
  }

  /** Return the optimiser's tensors (moments, norm scratch, gradNorm) to the engine's pool. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.engine.release(...this.m, ...this.v, this.partials, this.gradNorm);
  }
}
