/** The `topiary` command. */
import { Command } from 'commander';
import { topiaryVersion } from '../experiment/env.js';
import { trainCommand } from './train.js';
import { reproduceCommand } from './reproduce.js';

export function buildCli(): Command {
  const program = new Command('topiary')
    .description('prune neural networks: EVO-POP, HIER-MOEA, PMP and its baselines, on libtorch')
    .version(topiaryVersion())
    .showHelpAfterError('(run with --help for usage)');
  program.addCommand(trainCommand());
  program.addCommand(reproduceCommand());
  return program;
}

await buildCli().parseAsync(process.argv);
