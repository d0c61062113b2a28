/**
 * The GPU engine: one device, a pipeline cache, a buffer pool and a command batch.
 *
 * Kernels never submit on their own: `dispatch` records into the open batch and `flush` submits it,
 * so a whole training step is one submission with no readbacks inside it.
 */
import { DeviceLimitError, DeviceLostError, GPUValidationError, ShapeError, WebGPUUnavailableError } from './errors.ts';
import { type DType, type Tensor, arrayFor, numel, shapeString } from './tensor.ts';

/** How a kernel binds one storage buffer. */
export type StorageAccess = 'read' | 'read_write';

export interface KernelSpec {
  /** Cache key of the WGSL module, e.g. 'matmul'. */
  readonly module: string;
  readonly source: string;
  readonly entryPoint: string;
  /** Pipeline-overridable constants (WGSL `override`). */
  readonly constants?: Readonly<Record<string, number>>;
  /** Access of storage bindings 1..n, in order. Binding 0 is always the uniform parameter block. */
  readonly storage: readonly StorageAccess[];
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  limits: Record<string, number>;
  /** A CPU implementation of WebGPU (SwiftShader, lavapipe, llvmpipe): correct, but about 100× slower than a GPU. */
  software: boolean;
}

export interface EngineOptions {
  powerPreference?: GPUPowerPreference;
  /**
   * 'adapter' (default): ask for the adapter's maximum limits. 'default': ask for none, so the
   * device has WebGPU's spec defaults (128 MiB storage binding, 256 MiB buffer), as some browsers
   * and devices grant; everything must still run.
   */
  limits?: 'adapter' | 'default';
  /**
   * Treat storage bindings and buffers as capped at this many bytes (below the device's limits):
   * large tensors are then split into smaller blocks; tests use it to split tiny models.
   */
  maxBindingBytes?: number;
  /** Optional features to leave off even where the adapter has them: tests run the fallback kernels so. */
  withoutFeatures?: readonly GPUFeatureName[];
}

/** Limits the engine asks for at the adapter's maximum: big models need big storage buffers. */
const REQUESTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** Features the engine turns on where the adapter has them: subgroup reductions, f16 matmul variants, timestamps for the autotuner. */
const OPTIONAL_FEATURES: readonly GPUFeatureName[] = ['subgroups', 'shader-f16', 'timestamp-query'];

const PARAM_SLOT_BYTES = 256; // minUniformBufferOffsetAlignment is at most 256 everywhere
const PARAM_ARENA_SLOTS = 512;
const EMPTY_PARAMS = new ArrayBuffer(16);
const BUFFER_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

export async function createEngine(gpu: GPU | undefined, options: EngineOptions = {}): Promise<Engine> {
  if (!gpu) {
    throw new WebGPUUnavailableError(
      'WebGPU is not available in this environment. It ships in Chrome and Edge 113+ (desktop and Android), ' +
        'Safari 26+, and Firefox 141+ on Windows; pages must be served over https or from localhost.',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new WebGPUUnavailableError(
      'WebGPU is present but no GPU adapter was found: the GPU may be blocklisted or disabled in the browser settings.',
    );
  }
  const requiredLimits: Record<string, number> = {};
  if (options.limits !== 'default') {
    for (const name of REQUESTED_LIMITS) requiredLimits[name] = (adapter.limits as unknown as Record<string, number>)[name];
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((name) => adapter.features.has(name) && !options.withoutFeatures?.includes(name));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  return new Engine(adapter, device, options.maxBindingBytes);
}

/** Names the CPU implementations of WebGPU report (Chrome's SwiftShader, Mesa's lavapipe / llvmpipe). */
const SOFTWARE_ADAPTER = /swiftshader|lavapipe|llvmpipe|software rasterizer/i;

export function describeAdapter(adapter: GPUAdapter): AdapterDescription {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const name of REQUESTED_LIMITS) limits[name] = (adapter.limits as unknown as Record<string, number>)[name];
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    features: [...adapter.features].sort(),
    limits,
    software: (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true || SOFTWARE_ADAPTER.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`),
  };
}

export class Engine {
  readonly device: GPUDevice;
  readonly adapter: AdapterDescription;
  readonly limits: GPUSupportedLimits;
  /**
   * Matmul variant chosen per shape class (src/engine/ops/matmul-variants.ts), filled by the
   * autotuner; a class without an entry runs the fixed kernel. The GPU panel shows it.
   */
  readonly kernelChoices = new Map<string, string>();
  private readonly pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pool = new Map<number, GPUBuffer[]>();
  /** The pool's buffers, to refuse a second release: it would hand one buffer to two tensors. */
  private readonly pooled = new Set<GPUBuffer>();
  private readonly lostListeners = new Set<(error: DeviceLostError) => void>();
  private lostError: DeviceLostError | null = null;
  private gpuError: GPUValidationError | null = null;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private paramArena: GPUBuffer | null = null;
  private readonly paramStaging = new Uint8Array(PARAM_SLOT_BYTES * PARAM_ARENA_SLOTS);
  private paramSlots = 0;
  /** Bytes currently held by live tensors (allocated and not released). */
  liveBytes = 0;
  /** High-water mark of liveBytes + pooled bytes: the engine's GPU memory footprint. */
  peakBytes = 0;
  private pooledBytes = 0;

  /** `maxBindingBytes` lowers the engine's view of the binding and buffer size limits (EngineOptions). */
  constructor(adapter: GPUAdapter, device: GPUDevice, maxBindingBytes?: number) {
    this.device = device;
    this.adapter = describeAdapter(adapter);
    this.limits = maxBindingBytes === undefined ? device.limits : cappedLimits(device.limits, maxBindingBytes);
    device.lost.then((info) => {
      this.lostError = new DeviceLostError(`The GPU device was lost (${info.reason || 'unknown'}): ${info.message}`, info.reason);
      for (const listener of this.lostListeners) listener(this.lostError);
    });
    device.addEventListener('uncapturederror', (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      this.gpuError ??= new GPUValidationError(`WebGPU error: ${error.message}`);
    });
  }

  /** Called once if the device is lost; returns an unsubscribe function. */
  onLost(listener: (error: DeviceLostError) => void): () => void {
    if (this.lostError) queueMicrotask(() => listener(this.lostError!));
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  get isLost(): boolean {
    return this.lostError !== null;
  }

  // ---------------------------------------------------------------- tensors

  /** The largest tensor one buffer can hold and one kernel can bind: the smaller of the two limits. */
  get maxBindingBytes(): number {
    return Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize);
  }

  /**
   * A tensor from the pool (contents undefined unless `zero` is set). `name` (e.g. the weight's)
   * is what a too-large tensor's error calls it. `fit` chooses its buffer:
   * - 'pooled': a pooled buffer of at least its size and at most about twice that, else a new one of
   *   its size class;
   * - 'exact' (weights, held for the model's life): as pooled, but a new buffer has the tensor's size,
   *   not its size class, whose slack (up to 25%) only pays off for tensors released and reused by others;
   * - 'packed' (a tensor packed to half its f32 size, saved-tensor.ts): as pooled, but only buffers
   *   under twice its size: the f32 buffer it was packed from, freed just before, would otherwise
   *   hold it and the packing would save nothing.
   */
  alloc(shape: readonly number[], dtype: DType = 'f32', zero = false, name = 'a tensor', fit: BufferFit = 'pooled'): Tensor {
    this.assertAlive();
    const bytes = numel(shape) * 4;
    if (!Number.isInteger(bytes) || bytes <= 0) throw new ShapeError(`cannot allocate ${name} of shape ${shapeString(shape)}`);
    const maxBinding = this.maxBindingBytes;
    if (bytes > maxBinding) {
      const limit = maxBinding === this.limits.maxStorageBufferBindingSize ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
      throw new DeviceLimitError(
        `${name} of shape ${shapeString(shape)} needs ${bytes} bytes, over this device's ${limit} of ${maxBinding} bytes; ` +
          'a smaller batch or sequence length, or a device with larger limits, is needed',
      );
    }
    let buffer = this.takePooled(bytes, fit === 'packed');
    if (buffer) {
      if (zero) this.recordClear(buffer, buffer.size);
    } else {
      // A whole buffer is bound, so its size class never rounds past the binding limit.
      const size = fit === 'exact' ? roundUp(bytes, 4) : Math.min(sizeClass(bytes), Math.max(roundUp(bytes, 4), maxBinding));
      buffer = this.device.createBuffer({ size, usage: BUFFER_USAGE });
    }
    this.liveBytes += buffer.size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes + this.pooledBytes);
    return { buffer, shape: [...shape], dtype };
  }

  /**
   * The smallest pooled buffer that serves `bytes` (reusesPooled): batches of varying sequence length
   * reuse each other's buffers instead of growing the pool.
   */
  private takePooled(bytes: number, packed: boolean): GPUBuffer | undefined {
    let best = 0;
    const maxBinding = this.maxBindingBytes;
    for (const [size, free] of this.pool) {
      if (free.length > 0 && reusesPooled(size, bytes, packed) && size <= maxBinding && (best === 0 || size < best)) best = size;
    }
    if (best === 0) return undefined;
    this.pooledBytes -= best;
    const buffer = this.pool.get(best)!.pop()!;
    this.pooled.delete(buffer);
    return buffer;
  }

  /** Return a tensor's buffer to the pool. Safe while queued work still uses it: reuse is ordered on the queue. */
  release(...tensors: (Tensor | null | undefined)[]): void {
    for (const t of tensors) {
      if (!t) continue;
      if (this.pooled.has(t.buffer)) throw new Error(`release: ${t.buffer.label || 'a buffer'} of ${shapeString(t.shape)} was released already; releasing it again would give it to two tensors`);
      this.pooled.add(t.buffer);
      const size = t.buffer.size;
      let free = this.pool.get(size);
      if (!free) this.pool.set(size, (free = []));
      free.push(t.buffer);
      this.liveBytes -= size;
      this.pooledBytes += size;
    }
  }

  /** Destroy pooled buffers that are not in use. */
  trimPool(): void {
    for (const buffers of this.pool.values()) for (const b of buffers) b.destroy();
    this.pool.clear();
    this.pooled.clear();
    this.pooledBytes = 0;
  }

  /** A tensor holding `data`; `name` and `fit` as in `alloc`. */
  upload(data: Float32Array | Uint32Array | Int32Array | ArrayLike<number>, shape: readonly number[], dtype?: DType, name?: string, fit: BufferFit = 'pooled'): Tensor {
    const kind: DType = dtype ?? (data instanceof Uint32Array ? 'u32' : data instanceof Int32Array ? 'i32' : 'f32');
    if (numel(shape) !== data.length) {
      throw new ShapeError(`upload: ${data.length} values do not fill shape ${shapeString(shape)}`);
    }
    const typed = ArrayBuffer.isView(data) ? data : kind === 'f32' ? Float32Array.from(data) : kind === 'u32' ? Uint32Array.from(data) : Int32Array.from(data);
    const t = this.alloc(shape, kind, false, name, fit);
    this.write(t, typed as Float32Array | Uint32Array | Int32Array);
    return t;
  }

  /** Overwrite a tensor's contents (ordered before any later-flushed work). */
  write(t: Tensor, data: Float32Array | Uint32Array | Int32Array, offsetElements = 0): void {
    if (offsetElements + data.length > numel(t.shape)) {
      throw new ShapeError(`write: ${data.length} values at offset ${offsetElements} overflow shape ${shapeString(t.shape)}`);
    }
    this.flush(); // earlier recorded work must see the old contents
    this.device.queue.writeBuffer(t.buffer, offsetElements * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Copy a tensor back to the CPU. Flushes the open batch. */
  async read(t: Tensor): Promise<Float32Array | Uint32Array | Int32Array> {
    const bytes = numel(t.shape) * 4;
    const data = await this.readBytes(t.buffer, 0, bytes);
    return arrayFor(t.dtype, data);
  }

  async readF32(t: Tensor): Promise<Float32Array> {
    if (t.dtype !== 'f32') throw new ShapeError(`readF32: tensor is ${t.dtype}`);
    return (await this.read(t)) as Float32Array;
  }

  async readBytes(buffer: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    this.assertAlive();
    const staging = this.device.createBuffer({ size: roundUp(bytes, 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(buffer, offset, staging, 0, roundUp(bytes, 4));
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      this.assertAlive();
      throw e;
    }
    const out = staging.getMappedRange().slice(0, bytes);
    staging.destroy();
    this.throwPendingError();
    return out;
  }

  /** Record a clear of the first `bytes` of a tensor to zero. */
  zero(t: Tensor): void {
    this.recordClear(t.buffer, roundUp(numel(t.shape) * 4, 4));
  }

  /** Record a copy of `count` elements (default: all of src) from src[srcOffset..] to dst[dstOffset..]. */
  copy(src: Tensor, dst: Tensor, range: { srcOffset?: number; dstOffset?: number; count?: number } = {}): void {
    const { srcOffset = 0, dstOffset = 0, count = numel(src.shape) - srcOffset } = range;
    if (srcOffset + count > numel(src.shape) || dstOffset + count > numel(dst.shape) || count < 0) {
      throw new ShapeError(
        `copy: ${count} elements from offset ${srcOffset} of ${shapeString(src.shape)} to offset ${dstOffset} of ${shapeString(dst.shape)} is out of range`,
      );
    }
    if (count === 0) return;
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src.buffer, srcOffset * 4, dst.buffer, dstOffset * 4, count * 4);
  }

  // ---------------------------------------------------------------- kernels

  /**
   * Record one compute dispatch. `params` is the kernel's uniform block (binding 0, at most 256
   * bytes); `buffers` bind to 1..n in the order of `spec.storage`.
   */
  dispatch(spec: KernelSpec, params: ArrayBuffer | null, buffers: readonly GPUBuffer[], workgroups: readonly [number, number?, number?]): void {
    this.assertAlive();
    if (buffers.length !== spec.storage.length) {
      throw new ShapeError(`${spec.module}.${spec.entryPoint}: expected ${spec.storage.length} buffers, got ${buffers.length}`);
    }
    const [x, y = 1, z = 1] = workgroups;
    const maxPerDim = this.limits.maxComputeWorkgroupsPerDimension;
    for (const [axis, n] of [['x', x], ['y', y], ['z', z]] as const) {
      if (!Number.isInteger(n) || n < 0) throw new ShapeError(`${spec.module}.${spec.entryPoint}: invalid workgroup count ${axis}=${n}`);
      if (n > maxPerDim) {
        throw new DeviceLimitError(
          `${spec.module}.${spec.entryPoint}: ${n} workgroups along ${axis} exceeds this device's maxComputeWorkgroupsPerDimension of ${maxPerDim}`,
        );
      }
    }
    if (x === 0 || y === 0 || z === 0) return;
    if (params && params.byteLength > PARAM_SLOT_BYTES) throw new ShapeError(`${spec.module}: parameter block over ${PARAM_SLOT_BYTES} bytes`);
    const { pipeline, layout } = this.pipeline(spec);
    const entries: GPUBindGroupEntry[] = [];
    entries.push({ binding: 0, resource: this.paramSlot(params ?? EMPTY_PARAMS) });
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    const bindGroup = this.device.createBindGroup({ layout, entries });
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
  }

  /** Submit everything recorded so far. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.paramSlots > 0) this.uploadParams();
    const commands = this.encoder.finish();
    this.encoder = null;
    this.device.queue.submit([commands]);
  }

  /** Resolves when all submitted work has finished; throws any GPU error it raised. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.assertAlive();
    this.throwPendingError();
  }

  /**
   * Milliseconds the GPU spends on the dispatches `record` makes, run as one compute pass: from
   * timestamp queries where the device has them, else wall time from submit to onSubmittedWorkDone.
   * `record` must only dispatch (at most 512 times): anything that ends the pass is refused.
   */
  async timeDispatches(record: () => void): Promise<number> {
    await this.sync();
    if (!this.device.features.has('timestamp-query')) {
      record();
      const t0 = performance.now();
      await this.sync();
      return performance.now() - t0;
    }
    const querySet = this.device.createQuerySet({ type: 'timestamp', count: 2 });
    const resolved = this.device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const pass = this.commandEncoder().beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    this.pass = pass;
    record();
    if (this.pass !== pass) throw new ShapeError('timeDispatches: the recorded work ended the timed pass (more than 512 dispatches, or a copy or write)');
    this.endPass();
    this.commandEncoder().resolveQuerySet(querySet, 0, 2, resolved, 0);
    const [start, end] = new BigUint64Array(await this.readBytes(resolved, 0, 16));
    resolved.destroy();
    querySet.destroy();
    return Number(end - start) / 1e6;
  }

  /** Compile (or fetch from the cache) the pipeline for a kernel. */
  pipeline(spec: KernelSpec): { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout } {
    const key = `${spec.module}|${spec.entryPoint}|${spec.storage.join(',')}|${JSON.stringify(spec.constants ?? {})}`;
    let entry = this.pipelines.get(key);
    if (entry) return entry;
    let module = this.modules.get(spec.module);
    if (!module) {
      module = this.device.createShaderModule({ label: spec.module, code: spec.source });
      this.modules.set(spec.module, module);
    }
    const layout = this.device.createBindGroupLayout({
      label: `${spec.module}.${spec.entryPoint}`,
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
        ...spec.storage.map((access, i) => ({
          binding: i + 1,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: access === 'read' ? ('read-only-storage' as const) : ('storage' as const) },
        })),
      ],
    });
    const pipeline = this.device.createComputePipeline({
      label: `${spec.module}.${spec.entryPoint}`,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: spec.entryPoint, constants: spec.constants as Record<string, number> | undefined },
    });
    entry = { pipeline, layout };
    this.pipelines.set(key, entry);
    return entry;
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  /** `module.entryPoint` of every compiled pipeline: which kernel variants have run. */
  get compiledKernels(): string[] {
    return [...new Set([...this.pipelines.keys()].map((key) => key.split('|').slice(0, 2).join('.')))];
  }

  destroy(): void {
    this.flush();
    this.trimPool();
    this.paramArena?.destroy();
    this.device.destroy();
  }

  // ---------------------------------------------------------------- internals

  private assertAlive(): void {
    if (this.lostError) throw this.lostError;
  }

  private throwPendingError(): void {
    const error = this.gpuError;
    if (error) {
      this.gpuError = null;
      throw error;
    }
  }

  private commandEncoder(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private computePass(): GPUComputePassEncoder {
    return (this.pass ??= this.commandEncoder().beginComputePass());
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private recordClear(buffer: GPUBuffer, bytes: number): void {
    this.endPass();
    this.commandEncoder().clearBuffer(buffer, 0, bytes);
  }

  /**
   * Parameter blocks of one batch each get their own 256-byte slot; they are written with a single
   * writeBuffer just before the batch is submitted, which the queue orders before the batch runs.
   */
  private paramSlot(params: ArrayBuffer): GPUBufferBinding {
    // A very long batch: flushing keeps slot reuse safe because queue writes are ordered.
    if (this.paramSlots === PARAM_ARENA_SLOTS) this.flush();
    this.paramArena ??= this.device.createBuffer({
      size: PARAM_SLOT_BYTES * PARAM_ARENA_SLOTS,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    const offset = this.paramSlots++ * PARAM_SLOT_BYTES;
    this.paramStaging.set(new Uint8Array(params), offset);
    return { buffer: this.paramArena, offset, size: PARAM_SLOT_BYTES };
  }

  private uploadParams(): void {
    this.device.queue.writeBuffer(this.paramArena!, 0, this.paramStaging.buffer, 0, this.paramSlots * PARAM_SLOT_BYTES);
    this.paramSlots = 0;
  }
}

/** The device's limits with the storage binding and buffer sizes lowered to at most `bytes`. */
function cappedLimits(limits: GPUSupportedLimits, bytes: number): GPUSupportedLimits {
  if (!Number.isInteger(bytes) || bytes < 4) throw new ShapeError(`maxBindingBytes must be an integer of at least 4, got ${bytes}`);
  const capped: Record<string, number> = {};
  for (const name in limits) capped[name] = (limits as unknown as Record<string, number>)[name];
  capped.maxStorageBufferBindingSize = Math.min(capped.maxStorageBufferBindingSize, bytes);
  capped.maxBufferSize = Math.min(capped.maxBufferSize, bytes);
  return capped as unknown as GPUSupportedLimits;
}

/** Builds a uniform parameter block: every field is 4 bytes, in WGSL struct order. */
export class Params {
  private readonly view = new DataView(new ArrayBuffer(PARAM_SLOT_BYTES));
  private offset = 0;

  u32(...values: number[]): this {
    for (const v of values) {
      this.view.setUint32(this.offset, v, true);
      this.offset += 4;
    }
    return this;
  }

  i32(...values: number[]): this {
    for (const v of values) {
      this.view.setInt32(this.offset, v, true);
      this.offset += 4;
    }
    return this;
  }

  f32(...values: number[]): this {
    for (const v of values) {
      this.view.setFloat32(this.offset, v, true);
      this.offset += 4;
    }
    return this;
  }

  build(): ArrayBuffer {
    return this.view.buffer.slice(0, roundUp(Math.max(this.offset, 16), 16));
  }
}

/**
 * Pool size classes: 256-byte granules up to 4 KiB, then quarter steps between powers of two
 * (at most 25% slack). Batches of varying sequence length then reuse each other's buffers instead
 * of each exact size piling up in the pool.
 */
export function sizeClass(bytes: number): number {
  if (bytes <= 4096) return roundUp(bytes, 256);
  const quarter = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return roundUp(bytes, quarter);
}

/**
 * Whether a pooled buffer of `size` bytes serves a request for `bytes`: at least as large and at
 * most twice that (+256), so one buffer does not hold far more than its tensor needs; for a packed
 * tensor under twice (see Engine.alloc's 'packed').
 */
export function reusesPooled(size: number, bytes: number, packed = false): boolean {
  return size >= bytes && size <= (packed ? 2 * bytes - 4 : 2 * bytes + 256);
}

/** How Engine.alloc chooses a tensor's buffer (see there). */
export type BufferFit = 'pooled' | 'exact' | 'packed';

export function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

export function ceilDiv(a: number, b: number): number {
  return Math.ceil(a / b);
}

/** Split a 1-D workgroup count over x and y so neither exceeds the per-dimension limit. */
export function grid1d(workgroups: number, maxPerDim = 65535): [number, number] {
  if (workgroups <= maxPerDim) return [workgroups, 1];
  const y = Math.ceil(workgroups / maxPerDim);
  return [Math.ceil(workgroups / y), y];
}
