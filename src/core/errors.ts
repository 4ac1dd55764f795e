/**
 * One error class per failure, each with a stable `code` (DESIGN.md: Errors).
 * Outer layers add context with `{ cause }`; the CLI prints `message` on one line.
 */
export class TopiaryError extends Error {
  readonly code: string = 'TOPIARY_ERROR';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A tensor's shape does not fit the operation. */
export class ShapeError extends TopiaryError {
  override readonly code = 'SHAPE_ERROR';
}

/** A tensor's dtype does not fit the operation. */
export class DtypeError extends TopiaryError {
  override readonly code = 'DTYPE_ERROR';
}

/** A tensor was used after dispose(). */
export class DisposedTensorError extends TopiaryError {
  override readonly code = 'DISPOSED_TENSOR';
}

/** Any other error raised inside libtorch; the message names the op. */
export class EngineError extends TopiaryError {
  override readonly code = 'ENGINE_ERROR';
}

/** An argument out of range (dim, probability, count...). */
export class ArgumentError extends TopiaryError {
  override readonly code = 'ARGUMENT_ERROR';
}

/** Invalid configuration; `issues` carries the field paths (zod's). */
export class ConfigError extends TopiaryError {
  override readonly code = 'CONFIG_ERROR';
  readonly issues: { path: string; message: string }[];
  constructor(message: string, issues: { path: string; message: string }[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.issues = issues;
  }
}

/** A dataset file is missing, truncated or corrupt; the message names the file. */
export class DatasetError extends TopiaryError {
  override readonly code = 'DATASET_ERROR';
  readonly file?: string;
  constructor(message: string, file?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.file = file;
  }
}

/** An unknown registry key; the message lists the known keys. */
export class RegistryError extends TopiaryError {
  override readonly code = 'REGISTRY_ERROR';
}

/** A file (checkpoint, safetensors, mask) that cannot be read or does not match. */
export class SerializationError extends TopiaryError {
  override readonly code = 'SERIALIZATION_ERROR';
}

/** The native addon could not be loaded. */
export class NativeLoadError extends TopiaryError {
  override readonly code = 'NATIVE_LOAD_ERROR';
}

/** Training produced a non-finite loss, or a model holds non-finite weights: a result that must not pass. */
export class DivergenceError extends TopiaryError {
  override readonly code = 'DIVERGENCE';
}
