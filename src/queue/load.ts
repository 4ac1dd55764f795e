/**
 * The queue's one way in from the CLI. bullmq and ioredis are optional peer dependencies of the
 * package (the queue is an optional feature; bullmq pulls in an install script), so nothing loads
 * src/queue until a command asks for it: this file imports neither, and a missing one is one line.
 */
import { ConfigError } from '../core/errors.js';

export type QueueModule = typeof import('./index.js');

export const QUEUE_DEPS_MISSING = 'the queue needs bullmq and ioredis: npm install bullmq ioredis';

let loaded: Promise<QueueModule> | undefined;

/** src/queue/index.ts, loaded on first use; a ConfigError naming the packages when bullmq or ioredis is not installed. */
export function loadQueue(): Promise<QueueModule> {
  loaded ??= import('./index.js').catch((e: unknown) => {
    loaded = undefined;
    const err = e as NodeJS.ErrnoException;
    if ((err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND') && /['"](bullmq|ioredis)['"]/.test(String(err.message))) {
      throw new ConfigError(QUEUE_DEPS_MISSING, [], { cause: e });
    }
    throw e;
  });
  return loaded;
}
