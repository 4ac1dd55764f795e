/**
 * Child process of eval-pool.test.ts: starts a pool, then (by argv[2]) leaves it open after a batch
 * ('forget'), or makes a worker fail and lets the error escape ('throw'). Either way the process
 * must end by itself; the test checks its exit status and output.
 */
import { createModel } from '../../src/models/registry.js';
import { EvalPool } from '../../src/prune/hier-moea/eval-pool.js';
import { PrunableLayout } from '../../src/prune/hier-moea/layout.js';
import { randint, randn } from '../../src/tensor/index.js';

const config = { inputShape: [1, 8, 8], numClasses: 10, widths: [16] };
const model = createModel('mlp', config);
const layout = new PrunableLayout(model);
const val = [{ x: randn([20, 1, 8, 8]), y: randint(0, 10, [20]) }];
const pool = await EvalPool.start({ model: 'mlp', config, state: model.stateDict(), data: { val, calib: [] }, layout, workers: 2 });
if (process.argv[2] === 'forget') {
  const r = await pool.evaluateBatch(3, () => layout.sizes.map((n) => new Uint8Array(n).fill(1)));
  process.stdout.write(`evaluated ${r.length}\n`);
} else {
  await pool.evaluateBatch(2, () => [new Uint8Array(3)]);
}
