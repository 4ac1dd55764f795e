/** `topiary queue status`: how many jobs wait, run, finished and failed, with the names of the running and failed ones. */
import { Queue } from 'bullmq';
import { bullConnection, checkReachable, EVAL_QUEUE, PREFIX, RUNS_QUEUE, type QueueAddress } from './connection.js';

export interface QueueCounts { waiting: number; active: number; delayed: number; completed: number; failed: number }
export interface QueueStatus {
  runs: QueueCounts & { activeNames: string[]; failedRuns: { name: string; reason: string }[] };
  eval: QueueCounts;
}

export async function queueStatus(a: QueueAddress, listLimit = 20): Promise<QueueStatus> {
  await checkReachable(a);
  const open = (name: string) => { const q = new Queue(name, { connection: bullConnection(a), prefix: PREFIX }); q.on('error', () => {}); return q; };
  const runs = open(RUNS_QUEUE), ev = open(EVAL_QUEUE);
  try {
    const counts = async (q: Queue): Promise<QueueCounts> => {
      const c = await q.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
      return { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0 };
    };
    const active = await runs.getActive(0, listLimit - 1);
    const failed = await runs.getFailed(0, listLimit - 1);
    return {
      runs: { ...(await counts(runs)), activeNames: active.map((j) => j.name), failedRuns: failed.map((j) => ({ name: j.name, reason: (j.failedReason ?? '').split('\n')[0] })) },
      eval: await counts(ev),
    };
  } finally {
    await runs.close();
    await ev.close();
  }
}

export function formatStatus(s: QueueStatus, display: string): string {
  const line = (what: string, c: QueueCounts) => `${what}: ${c.waiting} waiting, ${c.active} active, ${c.delayed} delayed, ${c.completed} done, ${c.failed} failed`;
  return [
    `queue ${display}`,
    line('runs', s.runs),
    ...s.runs.activeNames.map((n) => `  running: ${n}`),
    ...s.runs.failedRuns.map((f) => `  failed: ${f.name}: ${f.reason}`),
    line('candidates', s.eval),
  ].join('\n') + '\n';
}
