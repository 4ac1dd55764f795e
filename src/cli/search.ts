/** `topiary search`: HIER-MOEA from a trained checkpoint (docs/methods/hier-moea.md). */
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { validate } from '../experiment/config.js';
import { runHierMoea } from '../experiment/reproduce-hier-moea.js';
import { writeRunPage } from '../experiment/run-report.js';
import { SearchConfig } from '../prune/hier-moea/config.js';
import { ConfigError } from '../core/errors.js';
import { isOnnxFile } from '../graph/onnx-import.js';
import { loadQueue } from '../queue/load.js';
import { int, mergeConfig, num, numList, runCommand } from './common.js';

const CLI_ONLY = ['stopAfterGenerations', 'queue', 'store'];

export function searchCommand(): Command {
  return new Command('search')
    .description('HIER-MOEA: a Pareto set of pruned networks (validation error against size), from a trained checkpoint or an ONNX file')
    .option('--from <file>', 'model.safetensors written by topiary train (runs/<out>/model.safetensors), or an ONNX file (model.onnx; give --dataset)')
    .option('--model <name>', 'model name; must match the checkpoint')
    .option('--dataset <name>', 'dataset; must match the checkpoint')
    .option('--pop <n>', 'population of both phases (>= 4)', int('pop'))
    .option('--phase1-gens <n>', 'phase-1 generations (the initial population counts as one)', int('phase1-gens'))
    .option('--phase2-gens <n>', 'phase-2 generations', int('phase2-gens'))
    .option('--val-size <n>', 'validation examples scoring the candidates (from the held-out split)', int('val-size'))
    .addOption(new Option('--importance <kind>', 'bit importance in phase 2').choices(['magnitude', 'taylor']))
    .option('--importance-batches <n>', 'training batches for the taylor gradient', int('importance-batches'))
    .option('--tolerance <x>', 'heavy anchor: error within this of the dense network (a fraction: 0.005 = half a point; default 0)', num('tolerance'))
    .option('--temperature <x>', 'importance-aware sampling temperature', num('temperature'))
    .option('--mutation-rate <x>', 'initial per-bit rate of the adaptive mutation', num('mutation-rate'))
    .addOption(new Option('--crossover <kind>', 'phase-2 crossover').choices(['two_point', 'uniform']))
    .option('--magnitude-seeds <list>', 'phase 1 starts with global magnitude pruning at these sparsities (default 0.5,0.7,0.9)', numList('magnitude-seeds'))
    .option('--phase2-seeds <x>', 'share of phase 2\'s first population taken from the phase-1 front (0 to 1; default 0.5)', num('phase2-seeds'))
    .option('--bn-batches <n>', 'BatchNorm recalibration batches per candidate', int('bn-batches'))
    .option('--bn-batch-size <n>', 'BatchNorm recalibration batch size', int('bn-batch-size'))
    .option('--eval-batch-size <n>', 'evaluation batch size', int('eval-batch-size'))
    .option('--finetune-epochs <n>', 'fine-tuning epochs of the knee and the picks, mask fixed', int('finetune-epochs'))
    .option('--finetune-lr <x>', 'fine-tuning learning rate (SGD, cosine)', num('finetune-lr'))
    .option('--finetune-momentum <x>', 'fine-tuning momentum', num('finetune-momentum'))
    .option('--finetune-weight-decay <x>', 'fine-tuning weight decay', num('finetune-weight-decay'))
    .option('--pick <list>', 'also fine-tune the best solution at each of these sparsities, e.g. 0.5,0.9', numList('pick'))
    .addOption(new Option('--granularity <g>', 'unstructured (weights) or structured (phase 1 removes whole channel groups; needs --phase2-gens 0; picks written shrunk)').choices(['unstructured', 'structured']))
    .addOption(new Option('--group-norm <n>', 'structured: rank channel groups by their l1 or l2 norm').choices(['l1', 'l2']))
    .option('--racing', 'stop a candidate\'s evaluation once it cannot enter the front (validation images hardest first); same front, faster')
    .option('--seed <n>', 'random seed', int('seed'))
    .option('--threads <n>', 'libtorch threads', int('threads'))
    .option('--workers <n>', 'evaluate each generation\'s candidates in n worker threads (default 1: in this thread; same results)', int('workers'))
    .option('--device <d>', 'cpu or cuda')
    .option('--recipe <file>', 'YAML recipe with the same fields (flags override it); may hold a dense: training section')
    .option('--data-dir <dir>', 'dataset folder (else $TOPIARY_DATA, else a cache)')
    .option('--out <dir>', 'output folder (an interrupted search resumes from it)', 'runs/search')
    .option('--stop-after-generations <n>', 'stop after n generations of this invocation (resume later with the same --out)', int('stop-after-generations'))
    .option('--queue <url>', 'evaluate each generation\'s candidates on `topiary worker`s reading this queue (redis://host:port/db; same results)')
    .option('--store <dir>', 'with --queue: shared folder for the model and data the workers load (default: the queue\'s Redis)')
    .option('--json', 'print the result as JSON on stdout')
    .option('--verbose', 'show stacks on errors')
    .action(async (opts: Record<string, unknown>) => {
      await runCommand(!!opts.verbose, async () => {
        const raw = mergeConfig(opts, CLI_ONLY);
        if (opts.from !== undefined) raw.from = opts.from;
        // An ONNX file holds the model (README: Bring your own model); the workers get its graph.
        if (isOnnxFile(raw.from)) {
          if (raw.model !== undefined) throw new ConfigError(`model: --from ${raw.from} is an ONNX file and searches the model it holds; leave --model out`, [{ path: 'model', message: 'given with an ONNX --from' }]);
          if (raw.dataset === undefined && !(raw.dense as Record<string, unknown> | undefined)?.dataset) throw new ConfigError(`dataset: --from ${raw.from} is an ONNX file, which names no dataset; give --dataset`, [{ path: 'dataset', message: 'required with an ONNX --from' }]);
          raw.from = resolve(raw.from);
        }
        const cfg = validate(SearchConfig, raw, 'search options');
        if (opts.store !== undefined && opts.queue === undefined) throw new ConfigError('--store: only with --queue');
        const q = opts.queue !== undefined ? await loadQueue() : undefined;
        const queue = q ? q.parseQueueUrl(String(opts.queue)) : undefined;
        if (queue && cfg.workers > 1) throw new ConfigError('--workers: not with --queue (the workers are `topiary worker` processes)', [{ path: 'workers', message: 'not with --queue' }]);
        const store = q && opts.store !== undefined ? new q.FsStore(String(opts.store)) : undefined;
        const log = (l: string) => process.stderr.write(l + '\n');
        const r = await runHierMoea(cfg, { out: String(opts.out), dataDir: opts.dataDir as string | undefined, progress: !opts.json, log,
          stopAfterGenerations: opts.stopAfterGenerations as number | undefined,
          remote: q && queue ? (setup) => q.RemoteEvaluator.start(setup, { queue, store, log }) : undefined });
        writeRunPage(String(opts.out));
        if (opts.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return; }
        if (!r.completed) { process.stdout.write(`stopped after ${r.evaluations} evaluations; resume with the same --out ${opts.out}\n`); return; }
        const pct = (x: number) => (100 * x).toFixed(2);
        process.stdout.write(`final Pareto set: ${r.solutions.length} solutions, hypervolume phase 1 ${r.hypervolume.phase1.toFixed(4)}, ` +
          `phase 2 ${r.hypervolume.phase2?.toFixed(4) ?? '-'}; dense test accuracy ${pct(r.denseTestAccuracy ?? NaN)}%\n`);
        for (const p of r.picks) {
          process.stdout.write(`  ${p.label}: ${pct(p.sparsity)}% of prunable weights removed, test accuracy ${pct(p.testAccuracy)}% after ${p.epochs} epoch(s) of fine-tuning\n`);
        }
        process.stdout.write(`masks in ${opts.out}/pareto-masks.safetensors, summary in ${opts.out}/result.json, plot ${opts.out}/fronts.svg\n`);
      });
    });
}
