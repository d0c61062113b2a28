/** Errors the engine raises. Each message names the offending tensor, shape or device limit. */

export class WebGPUUnavailableError extends Error {
  override name = 'WebGPUUnavailableError';
}

/** A tensor or parameter does not have the shape/size a kernel needs. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

/** A request exceeds what this device allows (buffer size, workgroups per dimension...). */
export class DeviceLimitError extends Error {
  override name = 'DeviceLimitError';
}

/** The GPU device was lost (driver reset, tab backgrounded too long, device destroyed). */
export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

/** WebGPU reported a validation or out-of-memory error for work the engine submitted. */
export class GPUValidationError extends Error {
  override name = 'GPUValidationError';
}
