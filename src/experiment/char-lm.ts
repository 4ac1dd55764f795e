/**
 * Train char_lm on the King James Bible (src/data/kjv.ts) and report validation perplexity.
 * The text is split by position: the first 90% trains, the last 10% validates (no verse of the
 * validation part is seen in training). Training draws `batch` random windows of context + 1
 * characters per step (seeded); validation runs over `valWindows` consecutive, non-overlapping
 * windows from the start of the validation part, and perplexity = exp(mean next-character
 * cross-entropy over every position of them). AdamW with cosine decay over the steps.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ArgumentError, ConfigError } from '../core/errors.js';
import { checkOutDir, withRunLock } from '../core/run-lock.js';
import { saveSafetensors } from '../tensor/safetensors.js';
import { writeJsonAtomic } from '../train/checkpoint.js';
import { Rng } from '../core/rng.js';
import { manualSeed, setNumThreads } from '../core/runtime.js';
import { charCorpus, loadKjvText, type KjvOptions } from '../data/kjv.js';
import { CHAR_LM_DEFAULTS, CharLM, type CharLmConfig } from '../models/char-lm.js';
import { AdamW } from '../optim/optimizer.js';
import { noGrad } from '../tensor/autograd.js';
import { tensor } from '../tensor/creation.js';
import { crossEntropy } from '../tensor/nn-ops.js';
import { tidy } from '../tensor/scope.js';

export interface CharLmRunOptions extends Partial<Omit<CharLmConfig, 'vocab'>> {
  steps: number;
  batch?: number;
  lr?: number;
  weightDecay?: number;
  seed?: number;
  valWindows?: number;
  threads?: number;
  kjv?: KjvOptions;
}

export interface CharLmResult {
  vocab: number;
  trainChars: number;
  valChars: number;
  params: number;
  steps: number;
  /** Mean training loss of the last 10% of the steps (nats per character). */
  finalTrainLoss: number;
  valLoss: number;
  valPerplexity: number;
  /** exp of the entropy of the training characters' frequencies: what a model without context reaches. */
  unigramPerplexity: number;
  seconds: number;
}

const windowTensor = (ids: Int32Array, starts: number[], len: number) => {
  const a = new BigInt64Array(starts.length * len);
  starts.forEach((s, b) => { for (let j = 0; j < len; j++) a[b * len + j] = BigInt(ids[s + j]); });
  return tensor(a, { shape: [starts.length, len] });
};

function lossOf(model: CharLM, ids: Int32Array, starts: number[], T: number, V: number) {
  const w = windowTensor(ids, starts, T + 1);
  const x = w.narrow(1, 0, T), y = w.narrow(1, 1, T).reshape(-1);
  return crossEntropy(model.call(x).reshape(-1, V), y);
}

export function trainCharLm(o: CharLmRunOptions): { model: CharLM; result: CharLmResult } {
  const t0 = performance.now();
  if (!(Number.isInteger(o.steps) && o.steps > 0)) throw new ArgumentError(`char_lm: steps must be a positive integer, got ${o.steps}`);
  if (o.threads) setNumThreads(o.threads);
  const seed = o.seed ?? 0;
  manualSeed(seed);
  const { vocab, ids } = charCorpus(loadKjvText(o.kjv));
  const cut = Math.floor(ids.length * 0.9);
  const train = ids.subarray(0, cut), val = ids.subarray(cut);
  const c: CharLmConfig = { vocab: vocab.length, context: o.context ?? CHAR_LM_DEFAULTS.context, dim: o.dim ?? CHAR_LM_DEFAULTS.dim,
    depth: o.depth ?? CHAR_LM_DEFAULTS.depth, heads: o.heads ?? CHAR_LM_DEFAULTS.heads, mlp: o.mlp ?? CHAR_LM_DEFAULTS.mlp };
  const T = c.context, V = c.vocab, B = o.batch ?? 32, lr = o.lr ?? 3e-3;
  const model = new CharLM(c);
  const opt = new AdamW(model.namedParameters(), { lr, weightDecay: o.weightDecay ?? 0.01 });
  const rng = new Rng(seed);
  const losses: number[] = [];
  try {
    model.train();
    for (let s = 0; s < o.steps; s++) {
      opt.lr = lr * 0.5 * (1 + Math.cos((Math.PI * s) / o.steps));
      const starts = Array.from({ length: B }, () => rng.int(train.length - T - 1));
      losses.push(tidy(() => {
        opt.zeroGrad();
        const loss = lossOf(model, train, starts, T, V);
        loss.backward();
        opt.step();
        return loss.item();
      }));
    }
  } finally {
    opt.dispose();
  }
  model.eval();
  const nVal = Math.min(o.valWindows ?? 256, Math.floor((val.length - 1) / T));
  let sum = 0;
  for (let k = 0; k < nVal; k += 64) {
    const starts = Array.from({ length: Math.min(64, nVal - k) }, (_, j) => (k + j) * T);
    sum += tidy(() => noGrad(() => lossOf(model, val, starts, T, V).item())) * starts.length;
  }
  const valLoss = sum / nVal;
  const counts = new Float64Array(V);
  for (const i of train) counts[i]++;
  let h = 0;
  for (const n of counts) if (n > 0) h -= (n / train.length) * Math.log(n / train.length);
  const tail = losses.slice(Math.floor(losses.length * 0.9));
  return {
    model,
    result: {
      vocab: V, trainChars: train.length, valChars: val.length, params: model.numParameters(), steps: o.steps,
      finalTrainLoss: tail.reduce((a, b) => a + b, 0) / tail.length, valLoss, valPerplexity: Math.exp(valLoss), unigramPerplexity: Math.exp(h),
      seconds: (performance.now() - t0) / 1000,
    },
  };
}

// ---- `topiary train --model char_lm --dataset kjv` ----------------------------------------------

/** The options `topiary train` takes for char_lm (flags and recipe fields; others are refused by name). */
export const CharLmTrainConfig = z.object({
  model: z.literal('char_lm'),
  dataset: z.literal('kjv', { message: "char_lm trains on 'kjv' (the King James Bible of Debian's bible-kjv-text)" }),
  steps: z.number().int().positive().default(2000),
  batchSize: z.number().int().positive().default(32),
  lr: z.number().positive().default(3e-3),
  weightDecay: z.number().min(0).default(0.01),
  seed: z.number().int().min(0).default(0),
  threads: z.number().int().positive().optional(),
  /** Validation windows of `context` characters (consecutive, from the start of the last 10%). */
  valWindows: z.number().int().positive().default(256),
  /** The model's shape (a recipe's fields; defaults CHAR_LM_DEFAULTS): width, blocks, heads per block, MLP width, context. */
  dim: z.number().int().positive().optional(),
  depth: z.number().int().positive().optional(),
  heads: z.number().int().positive().optional(),
  mlp: z.number().int().positive().optional(),
  context: z.number().int().min(2).optional(),
}).strict().superRefine((c, ctx) => {
  const dim = c.dim ?? CHAR_LM_DEFAULTS.dim, heads = c.heads ?? CHAR_LM_DEFAULTS.heads;
  if (dim % heads !== 0) ctx.addIssue({ code: 'custom', path: ['heads'], message: `${heads} heads do not divide the width ${dim} (dim)` });
});
export type CharLmTrainConfig = z.infer<typeof CharLmTrainConfig>;

/** Validate raw options (recipe fields merged with flags): one ConfigError naming every bad field. */
export function charLmConfig(raw: Record<string, unknown>): CharLmTrainConfig {
  if (raw.dataset === 'kjv' && raw.model !== 'char_lm') {
    throw new ConfigError(`model: the kjv dataset is text; only char_lm trains on it, got ${raw.model === undefined ? 'no --model' : `'${String(raw.model)}'`}`, [{ path: 'model', message: 'not char_lm' }]);
  }
  const r = CharLmTrainConfig.safeParse(raw);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => (i.code === 'unrecognized_keys'
    ? { path: i.keys.join(', '), message: `not an option of char_lm (it takes --steps, --batch-size, --lr, --weight-decay, --seed, --threads)` }
    : { path: i.path.join('.') || '(root)', message: i.message }));
  throw new ConfigError(`invalid char_lm options: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

/**
 * Train char_lm as the config says and write `<out>/result.json` (validation perplexity, the
 * unigram baseline, parameters, configuration, versions, wall time) and `<out>/model.safetensors`.
 * `dataDir`: a folder holding bible.data (default Debian's /usr/lib/bible.data).
 */
export async function runCharLmTraining(c: CharLmTrainConfig, o: { out: string; dataDir?: string; versions: () => Record<string, unknown> }): Promise<Record<string, unknown>> {
  checkOutDir(o.out);
  // The text is read (and checked) before anything is written: a missing bible file leaves no folder.
  const kjv: KjvOptions = o.dataDir ? { data: join(o.dataDir, 'bible.data') } : {};
  loadKjvText(kjv);
  return withRunLock(o.out, () => {
    const { model, result } = trainCharLm({ steps: c.steps, batch: c.batchSize, lr: c.lr, weightDecay: c.weightDecay, seed: c.seed, threads: c.threads, valWindows: c.valWindows, kjv,
      dim: c.dim, depth: c.depth, heads: c.heads, mlp: c.mlp, context: c.context });
    try {
      const r: Record<string, unknown> = {
        kind: 'train_char_lm', model: 'char_lm', dataset: 'kjv', config: c, seed: c.seed, completed: true,
        valPerplexity: result.valPerplexity, valLoss: result.valLoss, unigramPerplexity: result.unigramPerplexity,
        finalTrainLoss: result.finalTrainLoss, params: result.params, vocab: result.vocab, trainChars: result.trainChars, valChars: result.valChars,
        architecture: model.config, steps: result.steps, wallSeconds: +result.seconds.toFixed(2), versions: o.versions(),
      };
      mkdirSync(o.out, { recursive: true });
      saveSafetensors(join(o.out, 'model.safetensors'), model.stateDict(), { model: 'char_lm', dataset: 'kjv', config: JSON.stringify(model.config) });
      writeJsonAtomic(join(o.out, 'result.json'), r);
      return r;
    } finally {
      model.dispose();
    }
  });
}
