/**
 * A reproduction run inside a worker thread of `topiary worker` (see runInThread): training is
 * synchronous libtorch work, and on the process's main thread it would stop BullMQ from renewing
 * the job's lock, so a healthy long run would be taken for a dead one and started again elsewhere.
 */
import { parentPort, workerData } from 'node:worker_threads';
import '../experiment/reproductions.js';
import { getReproduction } from '../experiment/reproduce.js';
import type { RunThreadInit, RunThreadMessage } from './run-job.js';

const port = parentPort!;
const post = (m: RunThreadMessage) => port.postMessage(m);
const init = workerData as RunThreadInit;
try {
  const d = getReproduction(init.reproduction).distributed;
  if (!d) throw new Error(`the ${init.reproduction} reproduction runs only locally`);
  await d.runOne(init.spec, init.root, init.dir, { dataDir: init.dataDir, progress: false });
  post({ type: 'done' });
} catch (e) {
  post({ type: 'failed', name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) });
}
