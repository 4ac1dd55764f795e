/**
 * `topiary evo`: train a population-scaled network under a selection dynamic, then remove the
 * lowest-mass populations (and, as controls, by random / L2 / activation) at each fraction,
 * physically, and evaluate. Training flags are the same as `topiary train`'s.
 */
import { Command } from 'commander';
import { resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { TrainConfig, validate } from '../experiment/config.js';
import { EVO_MLP_RECIPE, runEvoPop } from '../experiment/reproduce-evo-pop.js';
import { writeRunPage } from '../experiment/run-report.js';
import { getDatasetSpec } from '../data/sources.js';
import { isOnnxFile, ONNX_MODEL } from '../graph/onnx-import.js';
import { CRITERIA, DYNAMICS_NAMES, EVO_KEYS, EvoConfig, FITNESS_NAMES } from '../prune/evo-pop/index.js';
import { evoModelFor } from '../prune/evo-pop/graph-physical.js';
import { markdownTable } from '../report/table.js';
import { int, mergeConfig, num, numList, runCommand } from './common.js';
import { addTrainFlags, outDefault } from './train.js';

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** --cost takes 'mean' or a number. */
function cost(v: string): number | 'mean' {
  return v === 'mean' ? 'mean' : num('cost')(v);
}

export function evoCommand(): Command {
  const cmd = addTrainFlags(new Command('evo').description('EVO-POP: pruning as evolution (population masses under selection dynamics, then removal)'))
    .option('--dynamics <name>', `selection dynamics: ${DYNAMICS_NAMES.join(', ')} or one registered by a --plugin (none: masses fixed, the dense control)`)
    .option('--fitness <name>', `fitness of a population: ${FITNESS_NAMES.join(', ')} or one registered by a --plugin`)
    .option('--eta <x>', 'step size of the dynamics (> 0)', num('eta'))
    .option('--beta <x>', 'EMA factor of the fitness, in [0, 1)', num('beta'))
    .option('--every <k>', 'apply the dynamics every k optimizer steps', int('every'))
    .option('--epsilon <x>', 'extinction threshold', num('epsilon'))
    .option('--mu <x>', 'replicator_mutator: mutation rate', num('mu'))
    .option('--cost <x>', "growth_decay: baseline cost, a number or 'mean'", cost)
    .option('--m-max <x>', 'growth_decay: upper clip of masses', num('m-max'))
    .option('--record-every <n>', 'record all masses every n steps (trajectory.json)', int('record-every'))
    .option('--prune-at <list>', 'fractions of populations to remove, each in (0, 1)', numList('prune-at'))
    .option('--populations <list>', 'population kinds: heads, neurons, filters, or channels (the channel groups of any model, e.g. resnet20; default: every kind the model has)', (v: string) => v.split(','))
    .option('--from <file.onnx>', 'start from an ONNX model (its weights; its populations are its channel groups); no --model')
    .option('--criteria <list>', `removal rules: ${CRITERIA.join(', ')}`, (v: string) => v.split(','))
    .option('--finetune-epochs <n>', 'fine-tune each pruned model this many epochs', int('finetune-epochs'))
    .option('--finetune-lr-scale <x>', 'fine-tuning lr as a fraction of --lr', num('finetune-lr-scale'))
    .option('--calibration-examples <n>', 'training images for the activation control', int('calibration-examples'));
  // The evo default output folder (addTrainFlags gives train's).
  cmd.setOptionValueWithSource('out', 'runs/evo', 'default');
  outDefault(cmd, 'runs/evo');
  return cmd.action(async (opts: Record<string, unknown>) => {
    await runCommand(!!opts.verbose, async () => {
      const merged = mergeConfig(opts);
      const evoKeys = new Set(EVO_KEYS);
      const evoRaw = Object.fromEntries(Object.entries(merged).filter(([k]) => evoKeys.has(camel(k))));
      const trainRaw = Object.fromEntries(Object.entries(merged).filter(([k]) => !evoKeys.has(camel(k))));
      if (opts.from !== undefined) evoRaw.from = opts.from; // a CLI-only key of mergeConfig's
      if (evoRaw.from !== undefined) { // the model is the file's (README: Bring your own model)
        if (!isOnnxFile(evoRaw.from)) throw new ConfigError(`from: evo starts from an ONNX file (model.onnx), got '${String(evoRaw.from)}'`, [{ path: 'from', message: 'not an ONNX file' }]);
        if (trainRaw.model !== undefined && trainRaw.model !== ONNX_MODEL) throw new ConfigError(`model: --from ${evoRaw.from} is an ONNX file and evolves the model it holds; leave --model out`, [{ path: 'model', message: 'given with an ONNX --from' }]);
        trainRaw.model = ONNX_MODEL;
        evoRaw.from = resolve(evoRaw.from);
      }
      const { threads: _t, ...recipe } = EVO_MLP_RECIPE;
      const c = validate(TrainConfig, { ...recipe, ...trainRaw }, 'training options');
      const e = validate(EvoConfig, evoRaw, 'EVO-POP options');
      checkScalable(c, e);
      const out = String(opts.out);
      const s = await runEvoPop(c, e, { out, dataDir: opts.dataDir as string | undefined, progress: !opts.json, tensorboard: opts.tensorboard as string | undefined });
      writeRunPage(out);
      if (opts.json) { process.stdout.write(JSON.stringify(s, null, 2) + '\n'); return; }
      const crits = [...new Set(s.rows.map((r) => r.criterion))];
      const channels = c.model === ONNX_MODEL || !!e.populations?.includes('channels');
      const table = markdownTable(['removal rule', ...e.pruneAt.map((f) => `−${(100 * f).toFixed(0)}%`)],
        crits.map((k) => [k, ...e.pruneAt.map((f) => { const r = s.rows.find((x) => x.criterion === k && x.fraction === f)!; return `${(100 * r.accuracy).toFixed(2)}${r.finetunedAccuracy !== undefined ? ` (ft ${(100 * r.finetunedAccuracy).toFixed(2)})` : ''}`; })]));
      process.stdout.write(`${c.model} on ${c.dataset}, dynamics ${e.dynamics}, fitness ${e.fitness}: dense test accuracy ${(100 * s.denseAccuracy).toFixed(2)}%, ` +
        `extinct ${Object.entries(s.extinct).map(([l, n]) => `${n}/${s.populations[l]} (layer ${l})`).join(', ')}\n${table}\n` +
        `summary in ${out}/evo.json${e.dynamics !== 'none' ? `, pruned models in ${out}/pruned_mass_<fraction>/ (${channels ? 'model.shrunk.graph.json + model.shrunk.safetensors' : 'model.safetensors + architecture.json'})` : ''}\n`);
    });
  });
}

/** Reject, before any data is loaded, a model that has no layer to scale (the error names 'model'). */
function checkScalable(c: TrainConfig, e: EvoConfig): void {
  const spec = getDatasetSpec(c.dataset);
  try {
    evoModelFor(c, e, { inputShape: [...spec.inputShape], numClasses: spec.numClasses }).dispose();
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`invalid training options: ${err.message}`, err.issues, { cause: err });
    throw err;
  }
}
