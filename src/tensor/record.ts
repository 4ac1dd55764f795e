/**
 * The op recorder slot (src/graph/trace.ts fills it). Functional ops (nn-ops, cat, stack, where)
 * report themselves here when a recorder is active; the check is one null test, so code that is
 * not traced pays nothing measurable. Tensor methods are recorded by the tracer itself.
 */
import type { Tensor } from './tensor.js';

export interface OpRecorder {
  /** `op` ran on `inputs` (null for an absent optional tensor) with `attrs`, giving `output`. */
  op(op: string, inputs: (Tensor | null)[], attrs: Record<string, unknown>, output: Tensor): void;
}

/** The active recorder, or null (almost always). */
export let recorder: OpRecorder | null = null;

/** Install a recorder (or null); returns the previous one. */
export function setRecorder(r: OpRecorder | null): OpRecorder | null {
  const prev = recorder;
  recorder = r;
  return prev;
}
