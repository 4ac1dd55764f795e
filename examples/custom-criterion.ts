// A criterion of your own, registered by name: from the API, and from the CLI as a plugin:
//   topiary --plugin examples/custom-criterion.ts prune --method one_shot --criterion row_relative --sparsity 0.9 ...
// Score: |w| relative to the mean |w| of its output row, so every neuron keeps its strongest inputs.
import { z } from 'zod';
import { createModel, manualSeed, prune, registerCriterion, tidy } from '../src/index.js';

registerCriterion({
  name: 'row_relative',
  description: '|w| / mean |w| of its row',
  hparams: z.object({ eps: z.number().positive().default(1e-12) }).strict(),
  needsData: false,
  score: ({ target }, hp) => tidy(() => new Map(target.weights.map((n) => {
    const a = target.param(n).detach().abs(); // [out, in, ...]
    return [n, a.div(a.flatten(1).mean(1).add(hp.eps).reshape([a.shape[0], ...a.shape.slice(1).map(() => 1)]))];
  }))),
});

// Run directly, it prunes a fresh LeNet-300-100 with it; imported as a plugin, it only registers.
if (import.meta.url === `file://${process.argv[1]}`) {
  manualSeed(0);
  const model = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 });
  const { target, record } = prune(model, 'row_relative', { sparsity: 0.9 });
  const rows = record.layers.map((l) => `${l.name} ${(100 * l.sparsity).toFixed(1)}%`).join(', ');
  console.log(`row_relative: kept ${record.kept} of ${record.total} (${rows})`);
  target.dispose();
  model.dispose();
}
