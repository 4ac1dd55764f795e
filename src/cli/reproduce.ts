/** `topiary reproduce <name>`. */
import { Command, Option } from 'commander';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import '../experiment/reproductions.js';
import { getReproduction, reproductionNames } from '../experiment/reproduce.js';
import { writeResultsPage } from '../experiment/run-report.js';
import { loadQueue } from '../queue/load.js';
import { num, runCommand } from './common.js';

export function reproduceCommand(): Command {
  return new Command('reproduce')
    .description(`reproduce a paper's table and write docs/results/<name>.md`)
    .argument('<name>', 'what to reproduce')
    .option('--seeds <n>', 'number of seeds', num('seeds'), 3)
    .addOption(new Option('--budget <b>', 'smoke (minutes), reduced (fewer epochs or generations; pmp and hier-moea) or full (the paper\'s)').choices(['smoke', 'reduced', 'full']).default('full'))
    .option('--data-dir <dir>', 'dataset folder (else $TOPIARY_DATA, else a cache)')
    .option('--out <dir>', 'runs folder (default runs/reproduce/<name>)')
    .option('--doc <file>', 'markdown file to write (default docs/results/<name>.md)')
    .option('--workers <n>', 'hier-moea: evaluate candidates in this many worker threads (same results, faster)', num('workers'))
    .option('--queue <url>', 'enqueue each run on this queue (redis://host:port/db) for `topiary worker`s instead of running it here (hier-moea: its candidates)')
    .option('--store <dir>', 'with --queue: the shared folder where workers put model files and masks')
    .option('--wait', 'with --queue: wait for every run, gather it, write the document (a later call without --wait gathers too)')
    .option('--verbose', 'show stacks on errors')
    .action(async (name: string, opts: Record<string, unknown>) => {
      await runCommand(!!opts.verbose, async () => {
        const seeds = opts.seeds as number;
        if (!(Number.isInteger(seeds) && seeds >= 1)) throw new ConfigError(`--seeds: must be a positive integer, got ${seeds}`);
        const workers = opts.workers as number | undefined;
        if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1)) throw new ConfigError(`--workers: must be a positive integer, got ${workers}`);
        // One per core at most: more only costs memory (300 took 5.3 GB before a line was printed).
        if (workers !== undefined && workers > availableParallelism()) throw new ConfigError(`--workers: ${workers} is more than the ${availableParallelism()} cores of this machine; use at most ${availableParallelism()}`);
        const r = getReproduction(name);
        if (workers !== undefined && name !== 'hier-moea') throw new ConfigError(`--workers: only hier-moea evaluates in worker threads, not ${name}`);
        const o = {
          seeds, budget: opts.budget as 'smoke' | 'reduced' | 'full', dataDir: opts.dataDir as string | undefined,
          out: (opts.out as string) ?? join('runs', 'reproduce', name),
          doc: (opts.doc as string) ?? join('docs', 'results', `${name}.md`),
          command: `topiary reproduce ${name} --seeds ${seeds} --budget ${opts.budget}` +
            (workers !== undefined ? ` --workers ${workers}` : '') + (opts.doc ? ` --doc ${opts.doc as string}` : ''),
          progress: true, workers,
        };
        if (opts.queue === undefined) {
          if (opts.store !== undefined || opts.wait) throw new ConfigError(`--${opts.store !== undefined ? 'store' : 'wait'}: only with --queue`);
          await r.run(o);
          writeResultsPage(o.out, o.doc);
          return;
        }
        // The runs and the document are the local ones: --queue, --store and --wait are not in the recorded command.
        const { FsStore, RemoteEvaluator, checkReachable, distributedOf, parseQueueUrl, sweepReproduction } = await loadQueue();
        const queue = parseQueueUrl(String(opts.queue));
        if (workers !== undefined) throw new ConfigError('--workers: not with --queue (the workers are `topiary worker` processes)');
        if (name === 'hier-moea') {
          // The searches run here, each generation's candidates on the workers (the same fronts).
          const store = opts.store !== undefined ? new FsStore(String(opts.store)) : undefined;
          await checkReachable(queue);
          await r.run({ ...o, remote: (setup) => RemoteEvaluator.start(setup, { queue, store, log: (l) => process.stderr.write(l + '\n') }) });
          return;
        }
        distributedOf(r);
        if (opts.store === undefined) throw new ConfigError('--store: give the shared folder where workers put model files and masks (the same on every machine)');
        const s = await sweepReproduction(r, o, {
          queue, store: new FsStore(String(opts.store)), wait: !!opts.wait, progress: true,
          log: (l) => process.stderr.write(l + '\n'),
        });
        if (s.wrote) writeResultsPage(o.out, o.doc);
        process.stdout.write(s.wrote ? `${s.total} runs finished (${s.gathered} gathered now); wrote ${o.doc}\n`
          : `${s.total - s.pending} of ${s.total} runs finished, ${s.pending} on the queue; gather them with the same command (add --wait to block)\n`);
      });
    })
    .addHelpText('after', () => `\nKnown: ${reproductionNames().join(', ')}`);
}
