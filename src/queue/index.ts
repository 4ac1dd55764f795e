/** Sweeps and HIER-MOEA candidate evaluation over BullMQ on Redis (docs/design.md, "Distributed runs"). */
export { parseQueueUrl, checkReachable, QueueError, PREFIX, RUNS_QUEUE, EVAL_QUEUE, type QueueAddress } from './connection.js';
export { FsStore, RedisStore, sha256, type Store, type StoredArtifact } from './store.js';
export { RunJob, RunResult, EvalJob, EvalContext, runJobId, evalJobId, parseJob } from './jobs.js';
export { sweepReproduction, distributedOf, type SweepOptions, type SweepOutcome } from './sweep.js';
export { RemoteEvaluator, EvalContexts, type RemoteEvalOptions } from './remote-eval.js';
export { startQueueWorker, type QueueWorker, type QueueWorkerOptions, type JobKind } from './worker.js';
export { queueStatus, formatStatus, type QueueStatus } from './status.js';
