/** The `topiary` command. */
import { Command } from 'commander';
import { topiaryVersion } from '../experiment/env.js';
import { trainCommand } from './train.js';
import { reproduceCommand } from './reproduce.js';
import { pruneCommand } from './prune.js';
import { searchCommand } from './search.js';
import { evoCommand } from './evo.js';
import { reportCommand } from './report.js';
import { exportCommand } from './export.js';
import { shrinkCommand } from './shrink.js';
import { queueCommands } from './worker.js';
import { loadPlugins } from '../api/extend.js';
import { runCommand } from './common.js';

export function buildCli(): Command {
  const program = new Command('topiary')
    .description('prune neural networks: EVO-POP, HIER-MOEA, PMP and its baselines, on libtorch')
    .version(topiaryVersion())
    .showHelpAfterError('(run with --help for usage)')
    .option('--plugin <file>', 'load a module that registers criteria, schedules, dynamics or fitness (repeatable; before the command)', (v: string, all: string[] = []) => [...all, v])
    .hook('preSubcommand', async (cmd) => {
      await runCommand(false, () => loadPlugins((cmd.opts().plugin as string[] | undefined) ?? []));
      if (process.exitCode) process.exit(process.exitCode);
    });
  program.addCommand(trainCommand());
  program.addCommand(reproduceCommand());
  program.addCommand(pruneCommand());
  program.addCommand(searchCommand());
  program.addCommand(evoCommand());
  program.addCommand(reportCommand());
  program.addCommand(exportCommand());
  program.addCommand(shrinkCommand());
  for (const c of queueCommands()) program.addCommand(c);
  return program;
}

// TOPIARY_CLI_IMPORT=1: imported for buildCli() alone (the in-process CLI fuzz test), nothing parsed.
if (process.env.TOPIARY_CLI_IMPORT !== '1') await buildCli().parseAsync(process.argv);
