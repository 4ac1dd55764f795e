/**
 * Graph round trips: trace a model, run the graph (at another batch size than the traced one):
 * the outputs equal the module's, for every zoo model and a user-defined residual module. A
 * GraphModule has the module's state dict names, trains like it (BatchNorm statistics), saves and
 * loads. MAC and parameter counts from the graph equal the published ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/index.js';
import { BatchNorm2d, Conv2d, Flatten, Linear, Module, Sequential } from '../../src/nn/index.js';
import { noGrad, randn, tidy, type Tensor } from '../../src/tensor/index.js';
import { trace } from '../../src/graph/trace.js';
import { GraphModule, loadGraphModule, runGraph, saveGraphModule } from '../../src/graph/run.js';
import { graphStats } from '../../src/graph/flops.js';

const MNIST = [1, 28, 28], CIFAR = [3, 32, 32];
export const ZOO: [string, number[]][] = [
  ['mlp', MNIST], ['lenet_300_100', MNIST], ['lenet5', MNIST], ['vgg_like', CIFAR], ['vgg19', CIFAR], ['resnet18', CIFAR],
  ['resnet20', CIFAR], ['resnet32', CIFAR], ['resnet56', CIFAR], ['resnet110', CIFAR],
  // Attention: the batch moves to dim 1 of the q/k/v view, the class token is expanded to the batch.
  ['vit_tiny', MNIST],
];
const maxDiff = (a: Tensor, b: Tensor) => tidy(() => a.sub(b).abs().max().item());

/** BatchNorm statistics that are not the initial 0 / 1, so eval-mode BatchNorm does something. */
function randomizeBatchNorm(m: Module): void {
  noGrad(() => {
    for (const [n, b] of m.namedBuffers()) {
      if (n.endsWith('running_mean')) b.copy_(randn(b.shape).mul(0.1));
      if (n.endsWith('running_var')) b.copy_(randn(b.shape).abs().add(0.5));
    }
    for (const [n, p] of m.namedParameters()) if (/bn|\d\.weight/.test(n) && p.ndim === 1) p.copy_(randn(p.shape).mul(0.2).add(1));
  });
}

// Published counts (test/models/models.test.ts holds them too): params, MACs for one input.
const COUNTS: Record<string, [number, number]> = {
  mlp: [535_818, 535_040], lenet_300_100: [266_610, 266_200], lenet5: [431_080, 2_293_000], vgg_like: [14_991_946, 313_463_808],
  vgg19: [20_040_522, 398_136_320], resnet18: [11_173_962, 555_422_720], resnet20: [269_722, 40_551_040], resnet32: [464_154, 68_862_592],
  resnet56: [853_018, 125_485_696], resnet110: [1_727_962, 252_887_680], vit_tiny: [139_018, 2_427_008],
};

for (const [name, shape] of ZOO) {
  test(`${name}: the graph's outputs equal the module's, at a batch size other than the traced one`, () => {
    manualSeed(1);
    const m = createModel(name, { inputShape: shape, numClasses: 10 });
    randomizeBatchNorm(m);
    m.eval();
    const g = trace(m, { inputShape: shape });
    const [params, macs] = COUNTS[name];
    const s = graphStats(g);
    assert.equal(s.params, params);
    assert.equal(s.macs, macs);
    tidy(() => noGrad(() => {
      const x = randn([2, ...shape]);
      const want = m.call(x);
      const [got] = runGraph(g, m.stateDict(), [x]);
      assert.deepEqual(got.shape, want.shape);
      assert.equal(maxDiff(got, want), 0, 'same ops in the same order: identical numbers');
    }));
    g.dispose();
    m.dispose();
  });
}

class Residual extends Module {
  body: Sequential; proj: Conv2d; head: Sequential;
  constructor() {
    super();
    this.body = this.registerModule('body', new Sequential(new Conv2d(3, 8, 3, { padding: 1 }), new BatchNorm2d(8)));
    this.proj = this.registerModule('proj', new Conv2d(3, 8, 1, { bias: false }));
    this.head = this.registerModule('head', new Sequential(new Flatten(), new Linear(8 * 6 * 6, 4)));
  }
  forward(x: Tensor): Tensor { return this.head.call(this.body.call(x).relu().add(this.proj.call(x)).relu()); }
}

test('a user-defined residual module: GraphModule keeps the names, trains, saves and loads', () => {
  manualSeed(2);
  const m = new Residual();
  const gm = GraphModule.fromModule(m, [3, 6, 6]);
  assert.deepEqual(Object.keys(gm.stateDict()), Object.keys(m.stateDict()));
  assert.deepEqual(gm.namedParameters().map(([n]) => n), m.namedParameters().map(([n]) => n));
  // Training mode: BatchNorm by batch statistics, running statistics updated the same way.
  m.train(); gm.train();
  tidy(() => {
    const x = randn([4, 3, 6, 6]);
    const a = m.call(x), b = gm.call(x);
    assert.ok(maxDiff(a, b) < 1e-6);
    const sa = m.stateDict(), sb = gm.stateDict();
    for (const k of ['body.1.running_mean', 'body.1.running_var', 'body.1.num_batches_tracked']) assert.equal(maxDiff(sa[k], sb[k]), 0, k);
    // Gradients reach the GraphModule's own parameters.
    b.sum().backward();
    assert.ok(gm.namedParameters().every(([, p]) => p.grad !== null));
  });
  m.eval(); gm.eval();
  const dir = mkdtempSync(join(tmpdir(), 'topiary-graph-'));
  try {
    const files = saveGraphModule(gm, join(dir, 'model.shrunk'));
    assert.ok(existsSync(files.graph) && existsSync(files.weights));
    const back = loadGraphModule(join(dir, 'model.shrunk')).eval();
    tidy(() => noGrad(() => {
      const x = randn([3, 3, 6, 6]);
      assert.equal(maxDiff(back.call(x), m.call(x)), 0);
    }));
    // Re-tracing a GraphModule gives the same graph, module paths included (a shrunk model is traced again for its new shapes).
    const again = trace(back, { inputShape: [3, 6, 6] });
    assert.deepEqual(again.nodes.map((n) => `${n.op}@${n.module}`), gm.graph.nodes.map((n) => `${n.op}@${n.module}`));
    assert.equal(again.nodes[0].module, 'body.0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a graph refuses an input of the wrong shape, naming both', () => {
  const m = createModel('lenet5', { inputShape: MNIST, numClasses: 10 });
  const g = trace(m, { inputShape: MNIST });
  tidy(() => assert.throws(() => runGraph(g, m.stateDict(), [randn([2, 1, 32, 32])]), /input 0 has shape \[2,1,32,32\], the graph takes \[N, 1, 28, 28\]/));
});
