/**
 * When to stop. Counts follow pymoo: the initial population is generation 1, and
 * evaluations include it, so popSize 100 for 250 generations is 25,000 evaluations.
 */
import { ArgumentError } from '../core/errors.js';
import type { Progress, Termination } from './types.js';

export function maxGenerations(n: number): Termination {
  checkLimit(n, 'maxGenerations');
  return { name: 'max_generations', isDone: (p: Progress) => p.generation >= n };
}

export function maxEvaluations(n: number): Termination {
  checkLimit(n, 'maxEvaluations');
  return { name: 'max_evaluations', isDone: (p: Progress) => p.evaluations >= n };
}

/** Stops as soon as any of the parts says so. */
export function anyOf(...parts: Termination[]): Termination {
  return { name: `any_of(${parts.map((t) => t.name).join(',')})`, isDone: (p: Progress) => parts.some((t) => t.isDone(p)) };
}

function checkLimit(n: number, who: string): void {
  if (!Number.isInteger(n) || n < 0) throw new ArgumentError(`${who}: limit must be a non-negative integer, got ${n}`);
}
