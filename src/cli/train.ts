/** `topiary train`. */
import { Command, Option } from 'commander';
import { TrainConfig, validate } from '../experiment/config.js';
import { runTraining } from '../experiment/train-run.js';
import { writeRunPage } from '../experiment/run-report.js';
import { withDefaults } from '../experiment/defaults.js';
import { charLmConfig, runCharLmTraining } from '../experiment/char-lm.js';
import { versions } from '../experiment/env.js';
import { int, intList, mergeConfig, num, runCommand } from './common.js';

/** Name a command's own default output folder in its help (the value stays addTrainFlags' default). */
export function outDefault(cmd: Command, shown: string): Command {
  const o = cmd.options.find((x) => x.long === '--out');
  if (o) o.defaultValueDescription = shown;
  return cmd;
}

/** The flags every training-based command shares (train, prune, evo). */
export function addTrainFlags(cmd: Command): Command {
  return cmd
    .option('--model <name>', 'model (mlp, lenet_300_100, lenet5, vgg_like, vgg19, resnet18, resnet20/32/56/110)')
    .option('--dataset <name>', 'dataset (mnist, fashion_mnist, cifar10, cifar100)')
    .option('--widths <list>', 'hidden widths of an mlp, e.g. 512,256', intList('widths'))
    .option('--init <name>', 'weight init: default, kaiming_normal, kaiming_normal_fan_out, kaiming_uniform, xavier_uniform, xavier_normal')
    .option('--epochs <n>', 'training epochs', int('epochs'))
    .option('--batch-size <n>', 'batch size', int('batch-size'))
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['sgd', 'adam', 'adamw']))
    .option('--lr <x>', 'learning rate', num('lr'))
    .option('--momentum <x>', 'SGD momentum', num('momentum'))
    .option('--nesterov', 'Nesterov momentum')
    .option('--weight-decay <x>', 'weight decay', num('weight-decay'))
    .option('--schedule <name>', 'lr schedule: constant, step, multistep, cosine')
    .option('--warmup-epochs <n>', 'linear lr warm-up epochs', int('warmup-epochs'))
    .option('--label-smoothing <x>', 'label smoothing', num('label-smoothing'))
    .option('--val-fraction <x>', 'fraction of the training set held out for validation', num('val-fraction'))
    .option('--subset <n>', 'train on the first n examples only (quick runs)', int('subset'))
    .option('--rotation <deg>', 'augmentation: random rotation in degrees', num('rotation'))
    .option('--translation <frac>', 'augmentation: random translation, fraction of size', num('translation'))
    .option('--crop-padding <px>', 'augmentation: random crop after padding', int('crop-padding'))
    .option('--flip', 'augmentation: random horizontal flip')
    .option('--seed <n>', 'random seed', int('seed'))
    .option('--device <d>', 'cpu or cuda')
    .option('--threads <n>', 'libtorch threads', int('threads'))
    .option('--recipe <file>', 'YAML recipe with the same fields (flags override it)')
    .option('--data-dir <dir>', 'dataset folder (else $TOPIARY_DATA, else a cache)')
    .option('--out <dir>', 'output folder', 'runs/train')
    .option('--tensorboard <dir>', 'also write TensorBoard event files there (scalars per epoch: loss, accuracy, lr, sparsity)')
    .option('--json', 'print the result as JSON on stdout')
    .option('--verbose', 'show stacks on errors');
}

export function trainCommand(): Command {
  return addTrainFlags(new Command('train').description('train a dense model and evaluate it'))
    .option('--stop-after-epochs <n>', 'stop after n epochs of this invocation (resume later with the same --out)', int('stop-after-epochs'))
    .option('--steps <n>', 'char_lm (--model char_lm --dataset kjv): optimizer steps (2000)', int('steps'))
    .action(async (opts: Record<string, unknown>) => {
      await runCommand(!!opts.verbose, async () => {
        if (opts.model === 'char_lm' || opts.dataset === 'kjv') return trainCharLmCommand(opts);
        const notes: string[] = []; // printed once the options are valid: a bad option stays one line
        const c = validate(TrainConfig, withDefaults(mergeConfig(opts), undefined, (l) => notes.push(l)), 'training options');
        for (const l of notes) process.stderr.write(l + '\n');
        const run = await runTraining(c, { out: String(opts.out), dataDir: opts.dataDir as string | undefined, progress: !opts.json, stopAfterEpochs: opts.stopAfterEpochs as number | undefined, tensorboard: opts.tensorboard as string | undefined });
        writeRunPage(String(opts.out));
        const r = run.result;
        if (opts.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        else if (r.completed) {
          process.stdout.write(`${c.model} on ${c.dataset}: test accuracy ${(100 * (r.testAccuracy as number)).toFixed(2)}% ` +
            `(${r.bestValAccuracy == null ? 'no validation split' : `best val ${(100 * (r.bestValAccuracy as number)).toFixed(2)}%`}), ${r.params} parameters, result in ${opts.out}/result.json\n`);
        } else process.stdout.write(`stopped after epoch ${run.history.length}; resume with the same --out ${opts.out}\n`);
        run.model.dispose();
        run.data.dispose();
      });
    });
}

/** `topiary train --model char_lm --dataset kjv`: trains by steps, reports validation perplexity (src/experiment/char-lm.ts). */
async function trainCharLmCommand(opts: Record<string, unknown>): Promise<void> {
  const c = charLmConfig(mergeConfig(opts));
  const r = await runCharLmTraining(c, { out: String(opts.out), dataDir: opts.dataDir as string | undefined, versions });
  if (opts.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  else process.stdout.write(`char_lm on kjv: validation perplexity ${(r.valPerplexity as number).toFixed(2)} (unigram baseline ${(r.unigramPerplexity as number).toFixed(2)}), ` +
    `${r.params} parameters, ${c.steps} steps, result in ${String(opts.out)}/result.json\n`);
}
