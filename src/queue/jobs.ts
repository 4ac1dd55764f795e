/**
 * The job kinds a worker runs, as zod schemas: a payload that does not parse is failed at once with
 * the field named (no retries), and no code travels in a job, only the name of a known kind and
 * plain JSON. Job ids are hashes of what defines the work, so the same run is one job however many
 * times it is enqueued.
 */
import { createHash } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { configHash } from '../experiment/hash.js';
import type { RunSpec } from '../experiment/reproduce.js';

/** A relative path of plain names (no '..', nothing absolute): run folders, files inside them. */
export const RelPath = z.string().min(1).refine((p) => !p.startsWith('/') && !p.includes('\\') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'), {
  message: 'must be a relative path without . or .. segments',
});
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, { message: 'must be a sha256 in hex' });

export const StoredArtifactSchema = z.object({ key: RelPath, sha256: Sha256, size: z.number().int().min(0) }).strict();

/** One run of a reproduction (RunSpec plus the reproduction's name and the jobs it needs). */
export const RunJob = z.object({
  kind: z.literal('reproduce.run'),
  reproduction: z.string().min(1),
  name: z.string().min(1),
  dir: RelPath,
  spec: z.record(z.string(), z.unknown()),
  needs: z.array(z.object({ dir: RelPath, job: z.string().min(1) }).strict()),
}).strict();
export type RunJob = z.infer<typeof RunJob>;

/** What a finished run sends back: its small files inline, the others as artifacts in the store. */
export const RunResult = z.object({
  /** Path under the run folder -> text (result.json, run.json, history...). */
  files: z.record(RelPath, z.string()),
  artifacts: z.array(z.object({ path: RelPath }).extend(StoredArtifactSchema.shape).strict()),
  seconds: z.number(),
  worker: z.string(),
}).strict();
export type RunResult = z.infer<typeof RunResult>;

/** One HIER-MOEA candidate: its masks as a bit set over the model's prunable weights (base64). */
export const EvalJob = z.object({
  kind: z.literal('hier-moea.eval'),
  /** The evaluation context: the sha256 of its description, which is in the store under contexts/<sha>.json. */
  context: Sha256,
  /** Where the context lives: the queue's own Redis, or the shared --store. */
  store: z.enum(['redis', 'shared']),
  nBits: z.number().int().positive(),
  bits: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: 'must be base64' }),
}).strict();
export type EvalJob = z.infer<typeof EvalJob>;

export const EvalResult = z.object({ error: z.number().min(0).max(1), correct: z.number().int().min(0), n: z.number().int().positive() }).strict();

/** The model, dense weights and evaluation data every candidate of a search is scored with. */
export const EvalContext = z.object({
  format: z.literal('topiary.queue.eval-context/1'),
  model: z.string().min(1),
  config: z.record(z.string(), z.unknown()),
  layers: z.array(z.object({ name: z.string(), size: z.number().int().positive() }).strict()).min(1),
  nVal: z.number().int().positive(),
  nCalib: z.number().int().min(0),
  /** safetensors of the dense state dict, and of 'val.<i>.x', 'val.<i>.y', 'calib.<i>'. */
  state: StoredArtifactSchema,
  data: StoredArtifactSchema,
  /** JSON of the model's graph, for a model outside the zoo (imported from ONNX): workers run it instead of rebuilding by name. */
  graph: StoredArtifactSchema.optional(),
}).strict();
export type EvalContext = z.infer<typeof EvalContext>;

/** A payload checked against its schema; a bad one fails its job for good, naming every bad field. */
export function parseJob<S extends z.ZodType>(schema: S, data: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const text = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new UnrecoverableError(`${what}: invalid job payload: ${text}`);
}

/** A run's job id: its reproduction, folder and spec hashed (BullMQ ids may not be bare integers, hence the prefix). */
export function runJobId(reproduction: string, run: RunSpec): string {
  return `run-${configHash({ reproduction, dir: run.dir, spec: run.spec })}`;
}

/** A candidate's job id: the context and the bits hashed, so a candidate seen again is scored once. */
export function evalJobId(context: string, bitsBase64: string): string {
  return `eval-${context.slice(0, 16)}-${createHash('sha256').update(bitsBase64).digest('hex').slice(0, 32)}`;
}
