/**
 * The run thread of `topiary worker` (RunThread): it runs the worker's reproduction runs one after
 * another. Training is synchronous libtorch work, and on the process's main thread it would stop
 * BullMQ from renewing the job's lock, so a healthy long run would be taken for a dead one and
 * started again elsewhere. The thread lives across runs: its modules, the addon and the parsed
 * datasets (cacheRawDatasets) are loaded once.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { cacheRawDatasets } from '../data/raw.js';
import '../experiment/reproductions.js';
import { getReproduction } from '../experiment/reproduce.js';
import type { RunThreadMessage, RunThreadRequest } from './run-job.js';

const port = parentPort!;
const post = (m: RunThreadMessage) => port.postMessage(m);
cacheRawDatasets((workerData as { cacheBytes: number }).cacheBytes);

port.on('message', (m: RunThreadRequest) => {
  if (m.type !== 'run') return;
  void (async () => {
    const init = m.init;
    try {
      const d = getReproduction(init.reproduction).distributed;
      if (!d) throw new Error(`the ${init.reproduction} reproduction runs only locally`);
      await d.runOne(init.spec, init.root, init.dir, { dataDir: init.dataDir, progress: false });
      post({ type: 'done', id: m.id });
    } catch (e) {
      post({ type: 'failed', id: m.id, name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) });
    }
  })();
});
post({ type: 'ready' });
