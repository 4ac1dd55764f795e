/** The `topiary` command. */
import { Command } from 'commander';
import { topiaryVersion } from '../experiment/env.js';
import { trainCommand } from './train.js';
import { reproduceCommand } from './reproduce.js';
import { pruneCommand } from './prune.js';
import { searchCommand } from './search.js';
import { evoCommand } from './evo.js';

export function buildCli(): Command {
  const program = new Command('topiary')
    .description('prune neural networks: EVO-POP, HIER-MOEA, PMP and its baselines, on libtorch')
    .version(topiaryVersion())
    .showHelpAfterError('(run with --help for usage)');
  program.addCommand(trainCommand());
  program.addCommand(reproduceCommand());
  program.addCommand(pruneCommand());
  program.addCommand(searchCommand());
  program.addCommand(evoCommand());
  return program;
}

await buildCli().parseAsync(process.argv);
