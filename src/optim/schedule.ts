/**
 * Learning-rate schedules: functions from the epoch (counted from 0) to a multiplier of the base lr,
 * applied once per epoch as PyTorch's epoch-stepped schedulers do. They compose: warmup(cosine(...)).
 */
import { ArgumentError } from '../core/errors.js';

export type LrSchedule = (epoch: number) => number;

export const constant = (): LrSchedule => () => 1;

export function step(stepSize: number, gamma = 0.1): LrSchedule {
  if (!(stepSize > 0)) throw new ArgumentError(`step schedule: stepSize must be positive, got ${stepSize}`);
  return (e) => gamma ** Math.floor(e / stepSize);
}

export function multistep(milestones: number[], gamma = 0.1): LrSchedule {
  const ms = [...milestones].sort((a, b) => a - b);
  return (e) => gamma ** ms.filter((m) => e >= m).length;
}

/** Cosine annealing over `total` epochs down to etaMinRatio * base (CosineAnnealingLR with T_max = total). */
export function cosine(total: number, etaMinRatio = 0): LrSchedule {
  if (!(total > 0)) throw new ArgumentError(`cosine schedule: total epochs must be positive, got ${total}`);
  return (e) => etaMinRatio + (1 - etaMinRatio) * (1 + Math.cos((Math.PI * Math.min(e, total)) / total)) / 2;
}

/** Linear warm-up from `start` to 1 over `epochs` epochs, then `after` (shifted so it starts at its epoch 0). */
export function warmup(after: LrSchedule, epochs: number, start = 0.1): LrSchedule {
  if (!(epochs >= 0)) throw new ArgumentError(`warmup: epochs must be non-negative, got ${epochs}`);
  return (e) => (e < epochs ? start + ((1 - start) * e) / epochs : after(e - epochs));
}

export type ScheduleName = 'constant' | 'step' | 'multistep' | 'cosine';
export const SCHEDULE_NAMES: ScheduleName[] = ['constant', 'step', 'multistep', 'cosine'];

export interface ScheduleConfig { name: ScheduleName; epochs: number; stepSize?: number; milestones?: number[]; gamma?: number; warmupEpochs?: number }

export function makeSchedule(c: ScheduleConfig): LrSchedule {
  let s: LrSchedule;
  const main = c.epochs - (c.warmupEpochs ?? 0);
  switch (c.name) {
    case 'constant': s = constant(); break;
    case 'step': s = step(c.stepSize ?? Math.max(1, Math.floor(main / 3)), c.gamma ?? 0.1); break;
    case 'multistep': s = multistep(c.milestones ?? [Math.floor(main / 2), Math.floor((3 * main) / 4)], c.gamma ?? 0.1); break;
    case 'cosine': s = cosine(Math.max(1, main)); break;
    default: throw new ArgumentError(`unknown schedule '${c.name as string}' (known: ${SCHEDULE_NAMES.join(', ')})`);
  }
  return c.warmupEpochs ? warmup(s, c.warmupEpochs) : s;
}
