/**
 * Extension points: a user's own criterion, schedule, selection dynamic or fitness is a value,
 * checked by a zod schema when registered (one call), and then known by name everywhere the
 * built-in ones are: the API's functions, recipes, and the CLI (`topiary --plugin my.ts ...` loads
 * a module that registers them before the command runs).
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ConfigError, RegistryError } from '../core/errors.js';
import { criterionNames, registerCriterion as addCriterion, type Criterion } from '../prune/criteria.js';
import { DYNAMICS, type Dynamics } from '../prune/evo-pop/dynamics.js';
import { FITNESS, type Fitness } from '../prune/evo-pop/fitness.js';
import { SCHEDULES, type Schedule } from '../prune/schedules.js';

/** Registry keys appear in the CLI, recipes and run hashes: lower snake case. */
export const RegistryName = z.string().regex(/^[a-z][a-z0-9_]*$/, 'must be lower snake case (a-z, 0-9, _), starting with a letter');
const fn = (what: string) => z.custom<(...a: never[]) => unknown>((v) => typeof v === 'function', { message: `must be a function (${what})` });
const zodSchema = z.custom<z.ZodType>((v) => v instanceof z.ZodType, { message: 'must be a zod schema of the hyperparameters' });

/** What a criterion value must hold (checked by registerCriterion). */
export const CriterionValue = z.object({
  name: RegistryName, description: z.string(), hparams: zodSchema, needsData: z.boolean(), score: fn('(ctx, hparams) => Map<weight name, score tensor>'),
});
/** What a schedule value must hold (checked by registerSchedule). */
export const ScheduleValue = z.object({ name: RegistryName, description: z.string(), hparams: zodSchema, sparsityAt: fn('(t, hparams) => sparsity') });
/** What a selection dynamic must hold (checked by registerDynamics). */
export const DynamicsValue = z.object({ name: RegistryName, description: z.string(), conserves: z.boolean(), update: fn('(m, f, alive, params) => new masses') });
/** What a fitness must hold (checked by registerFitness). */
export const FitnessValue = z.object({ name: RegistryName, description: z.string(), probe: z.enum(['grad', 'activation']), measure: fn('(layer) => tensor [n]') });

function check(kind: string, schema: z.ZodType, v: unknown): void {
  const r = schema.safeParse(v);
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
    const name = typeof (v as { name?: unknown })?.name === 'string' ? ` '${(v as { name: string }).name}'` : '';
    throw new ConfigError(`${kind}${name}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
}

function taken(kind: string, name: string, known: string[]): never {
  throw new RegistryError(`a ${kind} named '${name}' is already registered (registered: ${known.join(', ')})`);
}

/**
 * Register a pruning criterion (importance per prunable weight, higher = keep). Then
 * `prune(model, name, ...)` and `topiary prune --method one_shot --criterion <name>` use it.
 * @example
 * registerCriterion({ name: 'l1_row', description: 'row L1 norm', hparams: z.object({}), needsData: false,
 *   score: ({ target }) => new Map(target.weights.map((n) => [n, target.param(n).abs().sum(1, true).expandAs(target.param(n))])) });
 */
export function registerCriterion<H>(c: Criterion<H>): Criterion<H> {
  check('criterion', CriterionValue, c);
  if (criterionNames().includes(c.name)) taken('criterion', c.name, criterionNames());
  addCriterion(c);
  return c;
}

/**
 * Register a sparsity schedule (time -> target sparsity); `pmp(model, { schedule: name })` uses it.
 * @example
 * registerSchedule({ name: 'step_half', description: 'half at once, then all', hparams: z.object({ final: z.number(), phase: z.number() }),
 *   sparsityAt: (e, hp) => (e + 1 < hp.phase ? hp.final / 2 : hp.final) });
 */
export function registerSchedule<H>(s: Schedule<H>): Schedule<H> {
  check('schedule', ScheduleValue, s);
  if (Object.hasOwn(SCHEDULES, s.name)) taken('schedule', s.name, Object.keys(SCHEDULES));
  SCHEDULES[s.name] = s;
  return s;
}

/**
 * Register a selection dynamic for EVO-POP; `selection(model, { dynamics: name })` and `topiary evo --dynamics <name>` use it.
 * @example
 * registerDynamics({ name: 'greedy', description: 'm_i += eta m_i f_i', conserves: false,
 *   update: (m, f, _alive, p) => m.map((v, i) => v + p.eta * v * f[i]) });
 */
export function registerDynamics(d: Dynamics): Dynamics {
  check('dynamics', DynamicsValue, d);
  if (d.name === 'none' || Object.hasOwn(DYNAMICS, d.name)) taken('dynamics', d.name, [...Object.keys(DYNAMICS), 'none']);
  DYNAMICS[d.name] = d;
  return d;
}

/**
 * Register a fitness for EVO-POP; `selection(model, { fitness: name })` and `topiary evo --fitness <name>` use it.
 * @example
 * registerFitness({ name: 'neg_taylor', description: '-taylor', probe: 'grad', measure: (l) => fitness.taylor.measure(l).neg() });
 */
export function registerFitness(f: Fitness): Fitness {
  check('fitness', FitnessValue, f);
  if (Object.hasOwn(FITNESS, f.name)) taken('fitness', f.name, Object.keys(FITNESS));
  FITNESS[f.name] = f;
  return f;
}

/**
 * Import modules that register extensions (the CLI's `--plugin <file>`), relative to `cwd`.
 * A module that cannot be loaded is a ConfigError naming it.
 */
export async function loadPlugins(files: readonly string[], cwd = process.cwd()): Promise<void> {
  for (const f of files) {
    const path = isAbsolute(f) ? f : resolve(cwd, f);
    try {
      await import(pathToFileURL(path).href);
    } catch (e) {
      throw new ConfigError(`plugin: ${f}: cannot load (${(e as Error).message.split('\n')[0]})`, [{ path: 'plugin', message: 'cannot load' }], { cause: e });
    }
  }
}
