/** `topiary worker` and `topiary queue status`: the queue's side of distributed sweeps and searches (src/queue). */
import { Command } from 'commander';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import type { JobKind } from '../queue/index.js';
import { loadQueue } from '../queue/load.js';
import { num, runCommand } from './common.js';

function positive(flag: string, v: number | undefined, integer = true): void {
  if (v !== undefined && !(v > 0 && (!integer || Number.isInteger(v)))) throw new ConfigError(`${flag}: must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
}

export function workerCommand(): Command {
  return new Command('worker')
    .description('take jobs from a queue and run them: reproduction runs (topiary reproduce --queue) and HIER-MOEA candidates (topiary search --queue)')
    .requiredOption('--queue <url>', 'the queue: redis://[user:password@]host[:port][/db], or rediss:// for TLS')
    .option('--store <dir>', 'shared folder for model files and masks, the same one the coordinator uses (needed for runs)')
    .option('--work <dir>', 'this worker\'s own folder for the runs it makes (default: a folder under the system temp)')
    .option('--data-dir <dir>', 'dataset folder (else $TOPIARY_DATA, else a cache)')
    .option('--kinds <list>', 'which jobs to take: runs, eval or both (runs,eval)', 'runs,eval')
    .option('--threads <n>', 'libtorch threads for candidate evaluation (runs set their own)', num('threads'), 1)
    .option('--stalled-seconds <s>', 'a job whose worker stops answering for this long goes to another worker', num('stalled-seconds'), 30)
    .option('--job-timeout <s>', 'stop a run after this many seconds and try it again (default: no limit)', num('job-timeout'))
    .option('--checkpoint-seconds <s>', 'copy a running run\'s newest checkpoint to the store this often, so that a retry on another worker resumes', num('checkpoint-seconds'), 30)
    .option('--verbose', 'show stacks on errors')
    .action(async (opts: Record<string, unknown>) => {
      await runCommand(!!opts.verbose, async () => {
        const { FsStore, parseQueueUrl, startQueueWorker } = await loadQueue();
        const queue = parseQueueUrl(String(opts.queue));
        const kinds = String(opts.kinds).split(',').map((k) => k.trim()).filter(Boolean);
        const bad = kinds.filter((k) => k !== 'runs' && k !== 'eval');
        if (!kinds.length || bad.length) throw new ConfigError(`--kinds: expected runs, eval or runs,eval, got '${opts.kinds as string}'`);
        positive('--threads', opts.threads as number);
        positive('--stalled-seconds', opts.stalledSeconds as number, false);
        positive('--job-timeout', opts.jobTimeout as number | undefined, false);
        positive('--checkpoint-seconds', opts.checkpointSeconds as number, false);
        const log = (l: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${l}\n`);
        const w = await startQueueWorker({
          queue, store: opts.store ? new FsStore(String(opts.store)) : undefined,
          work: (opts.work as string | undefined) ?? join(tmpdir(), `topiary-worker-${process.pid}`),
          dataDir: opts.dataDir as string | undefined, threads: opts.threads as number, stalledSeconds: opts.stalledSeconds as number,
          jobTimeoutSeconds: opts.jobTimeout as number | undefined, checkpointSeconds: opts.checkpointSeconds as number, kinds: kinds as JobKind[], log,
        });
        await new Promise<void>((resolve) => {
          const stop = (sig: string) => {
            log(`${sig}: finishing the current job, then stopping (${w.stats.runs} runs, ${w.stats.evaluations} candidates done)`);
            void w.close().then(resolve);
          };
          process.once('SIGINT', () => stop('SIGINT'));
          process.once('SIGTERM', () => stop('SIGTERM'));
        });
      });
    });
}

export function queueCommand(): Command {
  const q = new Command('queue').description('look at a queue of topiary jobs');
  q.command('status')
    .description('waiting, active, done and failed jobs, with the names of the running and failed runs')
    .requiredOption('--queue <url>', 'the queue: redis://[user:password@]host[:port][/db]')
    .option('--json', 'print the counts as JSON')
    .option('--verbose', 'show stacks on errors')
    .action(async (opts: Record<string, unknown>) => {
      await runCommand(!!opts.verbose, async () => {
        const { formatStatus, parseQueueUrl, queueStatus } = await loadQueue();
        const a = parseQueueUrl(String(opts.queue));
        const s = await queueStatus(a);
        process.stdout.write(opts.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s, a.display));
      });
    });
  return q;
}

/** Both commands, for one registration line in main.ts. */
export function queueCommands(): Command[] {
  return [workerCommand(), queueCommand()];
}
