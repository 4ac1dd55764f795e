/** `topiary report <run folder>...`: one self-contained HTML page of the runs at or below the given folders. */
import { Command } from 'commander';
import { join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { writeReport } from '../experiment/run-report.js';
import { runCommand } from './common.js';

export function reportCommand(): Command {
  return new Command('report')
    .description('write one HTML page (no network needed to view it) of the runs in the given folders: curves, sparsity, fronts, masses, commands')
    .argument('<folders...>', 'run folders (holding result.json), or folders with runs below them')
    .option('--out <file>', 'the page (default: <folder>/report.html for one folder, report.html for several)')
    .option('--title <text>', 'page title')
    .option('--verbose', 'show stacks on errors')
    .action(async (folders: string[], opts: Record<string, unknown>) => {
      await runCommand(!!opts.verbose, async () => {
        const out = (opts.out as string | undefined) ?? (folders.length === 1 ? join(folders[0], 'report.html') : 'report.html');
        const r = writeReport(folders, out, { title: opts.title as string | undefined });
        for (const p of r.problems) process.stderr.write(`topiary report: ${p}\n`);
        if (!r.file) throw new ConfigError(`no run to report in ${folders.join(', ')}; nothing written`);
        process.stdout.write(`report of ${r.runs} run${r.runs === 1 ? '' : 's'} in ${r.file} (${(r.bytes / 1e6).toFixed(2)} MB)` +
          `${r.problems.length ? `; ${r.problems.length} not reported (above)` : ''}\n`);
        if (r.problems.length) process.exitCode = 1;
      });
    });
}
