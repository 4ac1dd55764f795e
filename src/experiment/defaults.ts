/**
 * Default recipes: what a command uses for the training fields it was not given, so that
 * `topiary prune --method pmp --model lenet_300_100 --dataset mnist --sparsity 0.9` runs with only
 * what identifies the job. One recipe per model and dataset family (28x28 grey: mnist,
 * fashion_mnist; 32x32 colour: cifar10, cifar100), each taken from a recipe this project ran
 * (recipes/, docs/results/); a model without its own entry gets its family's generic recipe.
 * Flags and --recipe files override every field; the fields filled here are printed in one line
 * and recorded in the config (`defaults`), hence in result.json.
 */
import { z } from 'zod';

type Family = 'grey28' | 'cifar';

export interface DefaultRecipe {
  /** Where the numbers come from. */
  source: string;
  epochs: number;
  batchSize: number;
  optimizer: 'sgd' | 'adam' | 'adamw';
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: 'constant' | 'step' | 'multistep' | 'cosine';
  milestones?: number[];
  gamma?: number;
  labelSmoothing?: number;
  augment?: { cropPadding?: number; flip?: boolean };
}

/** SGD 0.05, momentum 0.9, weight decay 5e-4, cosine, batch 128: every dense MNIST baseline (docs/results/dense.md). */
const GREY = { batchSize: 128, optimizer: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4, schedule: 'cosine' } as const;
/** The PMP CIFAR recipes (SGD 0.1, cosine over 200 epochs, label smoothing 0.1, crop + flip). */
const CIFAR_PMP = {
  epochs: 200, batchSize: 128, optimizer: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4, schedule: 'cosine', labelSmoothing: 0.1,
  augment: { cropPadding: 4, flip: true },
} as const;
/** He et al.'s CIFAR ResNets: SGD 0.1, weight decay 1e-4, lr / 10 at epochs 80 and 120 of 160, crop + flip. */
const CIFAR_HE = {
  epochs: 160, batchSize: 128, optimizer: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4, schedule: 'multistep', milestones: [80, 120], gamma: 0.1,
  augment: { cropPadding: 4, flip: true },
} as const;

const RESNETS = ['resnet20', 'resnet32', 'resnet56', 'resnet110'];

const TABLE: Record<Family, Record<string, DefaultRecipe>> = {
  grey28: {
    mlp: { ...GREY, epochs: 20, source: 'recipes/dense-mlp.yaml' },
    lenet_300_100: { ...GREY, epochs: 20, source: 'recipes/dense-lenet300.yaml' },
    lenet5: { ...GREY, epochs: 12, source: 'recipes/dense-lenet5.yaml' },
    ...Object.fromEntries(RESNETS.map((m) => [m, { ...GREY, epochs: 2, lr: 0.1, source: 'recipes/dense-resnet20.yaml' }])),
  },
  cifar: {
    vgg_like: { ...CIFAR_PMP, source: 'recipes/pmp-cifar10-vgg-like-97.yaml' },
    vgg19: { ...CIFAR_PMP, source: 'recipes/pmp-cifar10-vgg19-98.yaml' },
    resnet18: { ...CIFAR_PMP, source: 'recipes/pmp-cifar10-resnet18-729.yaml' },
    ...Object.fromEntries(RESNETS.map((m) => [m, { ...CIFAR_HE, source: 'recipes/hier-moea-resnet56.yaml (dense: He et al.)' }])),
  },
};
const GENERIC: Record<Family, DefaultRecipe> = {
  grey28: { ...GREY, epochs: 10, source: 'the MNIST baselines\' recipe (recipes/dense-*.yaml), 10 epochs' },
  cifar: { ...CIFAR_PMP, source: 'the CIFAR recipe of recipes/pmp-cifar10-*.yaml' },
};

/** PyTorch's own defaults where a user picks another optimizer than the recipe's. */
const OPTIMIZER_DEFAULTS = { adam: { lr: 1e-3, weightDecay: 0 }, adamw: { lr: 1e-3, weightDecay: 0.01 } } as const;

/**
 * PMP's pruning phase when none is given: 40% of the epochs (the authors' 80 of 200). Pruning over
 * all the epochs reaches the final sparsity at the start of the last epoch, at a tiny learning rate:
 * on a short run that costs points (issue 15: 84.51% against 87.46% at 98% on Fashion-MNIST).
 */
export const PMP_PHASE_FRACTION = 0.4;
export function defaultPmpPhase(epochs: number): number {
  return Math.max(1, Math.min(epochs, Math.round(PMP_PHASE_FRACTION * epochs)));
}

export function datasetFamily(dataset: string): Family | null {
  if (dataset === 'mnist' || dataset === 'fashion_mnist') return 'grey28';
  if (dataset === 'cifar10' || dataset === 'cifar100') return 'cifar';
  return null;
}

/** The default recipe of a model on a dataset (null for an unknown dataset: validation names it). */
export function defaultRecipe(model: string, dataset: string): DefaultRecipe | null {
  const f = datasetFamily(dataset);
  if (!f) return null;
  return TABLE[f][model] ?? GENERIC[f];
}

/** What was filled, as recorded in the config. */
export const AppliedDefaults = z.object({ source: z.string(), fields: z.array(z.string()) }).strict();
export type AppliedDefaults = z.infer<typeof AppliedDefaults>;

const FLAG: Record<string, string> = {
  epochs: '--epochs', batchSize: '--batch-size', optimizer: '--optimizer', lr: '--lr', momentum: '--momentum', weightDecay: '--weight-decay',
  schedule: '--schedule', labelSmoothing: '--label-smoothing', 'augment.cropPadding': '--crop-padding', 'augment.flip': '--flip', 'prune.phase': '--phase',
};

/** The one line printed at the start: the filled fields as the flags that would set them. */
export function describeDefaults(model: string, dataset: string, d: AppliedDefaults, values: Record<string, unknown>): string {
  const parts = d.fields.map((f) => {
    const v = values[f];
    if (f === 'augment.flip') return v ? '--flip' : 'no flip';
    return FLAG[f] ? `${FLAG[f]} ${String(v)}` : `${f} ${JSON.stringify(v)}`;
  });
  return `topiary: ${model} on ${dataset}, defaults from ${d.source}: ${parts.join(' ')} (flags or --recipe override them)`;
}

/**
 * Fill the training fields that `raw` (a recipe merged with flags, before validation) lacks from
 * the model's default recipe, and PMP's phase in `prune` (the raw prune options) when it has none.
 * Returns a new object with `defaults` recording what was filled (absent when nothing was); prints
 * one line through `log`. Unknown models or datasets pass through for validation to name them.
 */
export function withDefaults(raw: Record<string, unknown>, prune?: Record<string, unknown>,
  log: ((line: string) => void) | null = (l) => process.stderr.write(l + '\n')): Record<string, unknown> {
  if (typeof raw.model !== 'string' || typeof raw.dataset !== 'string' || raw.defaults !== undefined) return raw;
  const r = defaultRecipe(raw.model, raw.dataset);
  if (!r) return raw;
  const out: Record<string, unknown> = { ...raw };
  const filled: Record<string, unknown> = {};
  const fill = (k: string, v: unknown) => {
    if (out[k] === undefined && v !== undefined) { out[k] = v; filled[k] = v; }
  };
  fill('epochs', r.epochs);
  fill('batchSize', r.batchSize);
  fill('optimizer', r.optimizer);
  const opt = out.optimizer as string;
  const other = opt !== r.optimizer ? OPTIMIZER_DEFAULTS[opt as 'adam' | 'adamw'] : undefined;
  fill('lr', other ? other.lr : r.lr);
  fill('weightDecay', other ? other.weightDecay : r.weightDecay);
  if (opt === 'sgd') fill('momentum', r.momentum);
  const scheduleFilled = out.schedule === undefined;
  fill('schedule', r.schedule);
  if (scheduleFilled) {
    // Milestones in epochs of the recipe's length: scaled when the epochs were given.
    if (r.milestones) fill('milestones', r.milestones.map((m) => Math.round((m * (out.epochs as number)) / r.epochs)));
    fill('gamma', r.gamma);
  }
  fill('labelSmoothing', r.labelSmoothing);
  if (r.augment) {
    const given = (out.augment as Record<string, unknown> | undefined) ?? {};
    const aug: Record<string, unknown> = { ...given };
    for (const [k, v] of Object.entries(r.augment)) {
      if (aug[k] === undefined) { aug[k] = v; filled[`augment.${k}`] = v; }
    }
    out.augment = aug;
  }
  if (prune && prune.method === 'pmp' && prune.phase === undefined && typeof out.epochs === 'number' && Number.isInteger(out.epochs) && out.epochs > 0) {
    prune.phase = defaultPmpPhase(out.epochs);
    filled['prune.phase'] = prune.phase;
  }
  const fields = Object.keys(filled);
  if (!fields.length) return raw;
  const applied: AppliedDefaults = { source: r.source, fields };
  out.defaults = applied;
  log?.(describeDefaults(raw.model, raw.dataset, applied, filled));
  return out;
}
