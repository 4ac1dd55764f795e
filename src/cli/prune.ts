/** `topiary prune`: train with a pruning method (PMP and its baselines), write result.json with the sparsity accounting. */
import { Command } from 'commander';
import { join, resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { isOnnxFile, ONNX_MODEL } from '../graph/onnx-import.js';
import { readRecipe, TrainConfig, validate } from '../experiment/config.js';
import { setupData } from '../experiment/data-setup.js';
import { versions } from '../experiment/env.js';
import { configHash } from '../experiment/hash.js';
import { runTraining } from '../experiment/train-run.js';
import { writeRunPage } from '../experiment/run-report.js';
import { withDefaults } from '../experiment/defaults.js';
import { METHOD_NAMES } from '../prune/methods/index.js';
import type { PruneEnv, PruneOptions } from '../prune/methods/types.js';
import { preflight, runPrune, validatePruneOptions } from '../prune/options.js';
import { int, intList, mergeConfig, num, runCommand } from './common.js';
import { addTrainFlags, outDefault } from './train.js';

/** Option keys that belong to the pruning options (the recipe's `prune:` mapping), not to training. */
export const PRUNE_KEYS = ['method', 'sparsity', 'scope', 'granularity', 'prunable', 'from', 'phase', 'initialSparsity', 'startEpoch', 'endEpoch',
  'frequency', 'samples', 'temperature', 'classBalanced', 'rate', 'outputRate', 'rewindIteration', 'controls', 'controlRounds', 'finetune',
  'criterion', 'unit'];

/** The experiment layer's services, lent to the pruning methods. */
export const pruneEnv: PruneEnv = {
  runTraining: (c, o, h) => runTraining(c as TrainConfig, o, h),
  setupData: (c, o) => setupData(c as TrainConfig, o),
  versions,
};

/**
 * Training config and prune options from a recipe and flags: the recipe's top-level fields train,
 * its `prune:` mapping prunes; flags override both. Validated before any work.
 */
export function pruneConfigFrom(opts: Record<string, unknown>, given: (key: string) => boolean = () => true): { train: TrainConfig; prune: PruneOptions } {
  const trainRaw = mergeConfig(opts, PRUNE_KEYS);
  delete trainRaw.prune;
  const recipe = opts.recipe ? readRecipe(String(opts.recipe)) : {};
  const pruneRaw: Record<string, unknown> = { ...((recipe.prune as Record<string, unknown>) ?? {}) };
  for (const k of PRUNE_KEYS) if (opts[k] !== undefined && given(k)) pruneRaw[k] = opts[k];
  if (isOnnxFile(pruneRaw.from)) { // the model is the file's (README: Bring your own model)
    if (trainRaw.model !== undefined && trainRaw.model !== ONNX_MODEL) throw new ConfigError(`model: --from ${pruneRaw.from} is an ONNX file and prunes the model it holds; leave --model out`, [{ path: 'model', message: 'given with an ONNX --from' }]);
    trainRaw.model = ONNX_MODEL;
    pruneRaw.from = resolve(pruneRaw.from);
  }
  // The defaults line is printed once the options are valid: a bad option stays one line.
  const notes: string[] = [];
  const merged = withDefaults(trainRaw, pruneRaw, (l) => notes.push(l));
  // --no-finetune trains nothing: epochs are not needed (0 or none is accepted; 1 stands in for the
  // schema, and result.json records 0). The config, hence the run hash, is otherwise as before.
  const noTraining = pruneRaw.finetune === false;
  if (noTraining && (merged.epochs === undefined || merged.epochs === 0)) merged.epochs = 1;
  if (noTraining) notes.splice(0, notes.length, ...notes.map((l) => l.replace(/ --epochs \d+/, '')).filter((l) => !/defaults from [^:]*: \(/.test(l)));
  const train = validate(TrainConfig, merged, 'training options');
  const prune = validatePruneOptions(pruneRaw, train);
  preflight(train, prune);
  for (const l of notes) process.stderr.write(l + '\n');
  return { train, prune };
}

export function pruneCommand(): Command {
  return outDefault(addTrainFlags(new Command('prune').description('prune while (or before, or after) training: pmp, gmp, magnitude, random, lth, snip, grasp')), 'runs/prune/<method>_<config hash>/seed_<seed>')
    .option('--method <name>', `pruning method (${METHOD_NAMES.join(', ')})`)
    .option('--sparsity <x>', 'fraction of prunable weights removed, in [0, 1)', num('sparsity'))
    .option('--scope <s>', 'global (one threshold across layers) or layer (each layer to the sparsity)')
    .option('--granularity <g>', 'unstructured (weights) or structured (whole neurons / filters with bias and BatchNorm)')
    .option('--unit <u>', 'structured: channels (default), heads (attention heads), neurons (transformer MLP neurons) or heads,neurons')
    .option('--prunable <regex>', 'prunable parameters by name (default: every weight with more than one dim)')
    .option('--from <path>', 'a trained model: model.safetensors, a run folder holding one, or an ONNX file (model.onnx)')
    .option('--phase <epochs>', 'pmp: pruning phase P in epochs (default: 40% of the epochs, the authors\' 80 of 200)', num('phase'))
    .option('--initial-sparsity <x>', 'gmp: s_i', num('initial-sparsity'))
    .option('--start-epoch <n>', 'gmp: first epoch of the schedule', int('start-epoch'))
    .option('--end-epoch <n>', 'gmp: the schedule reaches s_f at the end of epoch n - 1', int('end-epoch'))
    .option('--frequency <steps>', 'gmp: steps between mask updates', int('frequency'))
    .option('--samples <n>', 'snip / grasp: examples in the scoring batch (100)', int('samples'))
    .option('--temperature <T>', 'grasp: logits divided by T (200)', num('temperature'))
    .option('--no-class-balanced', 'grasp: a random scoring batch instead of a class-balanced one')
    .option('--rate <x>', 'lth: fraction of each hidden layer pruned per round (0.2)', num('rate'))
    .option('--output-rate <x>', 'lth: fraction of the output layer pruned per round (0.1)', num('output-rate'))
    .option('--rewind-iteration <k>', 'lth: rewind to the weights after k steps (0: the initialization)', int('rewind-iteration'))
    .option('--controls <list>', 'lth: control branches, comma separated: reinit, random_mask', (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .option('--control-rounds <list>', 'lth: rounds that get the controls (default: the last)', intList('control-rounds'))
    .option('--no-finetune', 'magnitude / random / one_shot: evaluate the pruned model without training (no --epochs needed; result.json records 0)')
    .option('--criterion <name>', 'one_shot: a registered criterion (built-in, or from topiary --plugin <file>); its options in the recipe\'s prune.criterionOptions')
    .option('--stop-after-epochs <n>', 'stop after n epochs of this invocation (resume later with the same --out)', int('stop-after-epochs'))
    .action(async (opts: Record<string, unknown>, command: Command) => {
      await runCommand(!!opts.verbose, async () => {
        const given = (k: string) => command.getOptionValueSource(k) !== 'default';
        const { train, prune } = pruneConfigFrom(opts, given);
        const out = given('out') ? String(opts.out) : join('runs', 'prune', `${prune.method}_${configHash({ train, prune })}`, `seed_${train.seed}`);
        const r = await runPrune({ train, prune, run: { out, dataDir: opts.dataDir as string | undefined, progress: !opts.json, stopAfterEpochs: opts.stopAfterEpochs as number | undefined, tensorboard: opts.tensorboard as string | undefined } }, pruneEnv);
        writeRunPage(out);
        if (opts.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        else if (r.completed) {
          const pct = (x: unknown) => `${(100 * (x as number)).toFixed(2)}%`;
          process.stdout.write(`${prune.method} ${train.model} on ${train.dataset}: sparsity ${pct(r.achievedSparsity)} (requested ${pct(r.requestedSparsity)}), ` +
            `test accuracy ${pct(r.testAccuracy)}, result in ${out}/result.json\n`);
        } else process.stdout.write(`stopped before the end; resume with the same --out ${out}\n`);
      });
    });
}
