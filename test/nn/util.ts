/** Helpers for the nn / optim / models / train tests: fixtures as tensors, tolerant comparison, leak checks. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import type { DType } from '../../src/core/dtype.js';
import { memory, tensor, type Tensor } from '../../src/tensor/index.js';

/** A tensor as scripts/make-nn-fixtures.py writes it. */
export interface Rec { dtype: DType; shape: number[]; data: number[] }

export const repoRoot = resolve(fileURLToPath(import.meta.url), '../../..');
export const dataRoot = process.env.TOPIARY_DATA || resolve(repoRoot, '../shared/datasets');

export function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(resolve(repoRoot, 'test/fixtures', name), 'utf8')) as T;
}

export function fromRec(r: Rec, requiresGrad = false): Tensor {
  const t = tensor(r.data, { dtype: r.dtype, shape: r.shape });
  return requiresGrad ? t.requiresGrad_(true) : t;
}

/** Same shape (and dtype), values within atol + rtol * |expected|; the message names the element. */
export function assertTensorClose(actual: Tensor | null, expected: Rec, what: string, tol: [number, number] = [1e-5, 1e-6]): void {
  assert.ok(actual, `${what}: missing (null)`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  if (expected.dtype === 'int64' || expected.dtype === 'bool') assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  const got = actual.dataSync();
  const [rtol, atol] = tol;
  for (let i = 0; i < expected.data.length; i++) {
    const g = got[i], w = expected.data[i];
    assert.ok(Math.abs(g - w) <= atol + rtol * Math.abs(w), `${what}: element ${i} is ${g}, PyTorch gives ${w} (rtol ${rtol}, atol ${atol})`);
  }
}

export function assertClose(actual: number, expected: number, what: string, rtol = 1e-9, atol = 1e-12): void {
  assert.ok(Math.abs(actual - expected) <= atol + rtol * Math.abs(expected), `${what}: ${actual}, expected ${expected}`);
}

/** Run fn and assert it leaves no more live tensors than before. */
export async function noLeaks<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  const before = memory().tensors;
  const r = await fn();
  assert.equal(memory().tensors, before, `${what}: live tensors before ${before}, after ${memory().tensors}`);
  return r;
}
