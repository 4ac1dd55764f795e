/**
 * Structured pruning that really removes channels: ResNet-20 on MNIST, half of every layer's
 * channels removed by group magnitude (per-layer scope: 50% of each channel family, coupled
 * channels together), fine-tuned, shrunk; parameters, MACs and median latency at batch 1 and 128
 * against the dense model, in topiary and in onnxruntime-node, dense and shrunk runs alternating.
 *
 *   node --import tsx bench/structured-resnet20.ts [--data-dir DIR] [--subset 6000] [--epochs 2] [--reps 7] [--out runs/bench-structured] [--train-only]
 *
 * Both runs go through the real pipeline (runTraining, then `prune --method magnitude --granularity
 * structured`, which writes model.shrunk.*); finished stages are reused. Latency: one thread
 * (setNumThreads(1), OPENBLAS/OMP_NUM_THREADS=1 set before the addon loads, onnxruntime's
 * intra/inter-op threads 1), eval mode, no autograd, random inputs. The table's latency is CPU time
 * per call (process user + system time over the timed calls; `--clock wall` for wall time), the
 * median over repetitions: on a shared machine wall time also counts the waits for a core.
 */
process.env.OMP_NUM_THREADS = '1';
process.env.OPENBLAS_NUM_THREADS = '1';
process.env.MKL_NUM_THREADS = '1';
const { join } = await import('node:path');
const { existsSync } = await import('node:fs');
const ort = await import('onnxruntime-node');
const { manualSeed, setNumThreads } = await import('../src/core/runtime.js');
const { validate, TrainConfig } = await import('../src/experiment/config.js');
const { runTraining } = await import('../src/experiment/train-run.js');
const { pruneConfigFrom, pruneEnv } = await import('../src/cli/prune.js');
const { runPrune } = await import('../src/prune/options.js');
const { createModel } = await import('../src/models/registry.js');
const { loadWeights } = await import('../src/prune/methods/stage.js');
const { loadGraphModule, GraphModule } = await import('../src/graph/run.js');
const { graphStats } = await import('../src/graph/flops.js');
const { trace } = await import('../src/graph/trace.js');
const { encodeOnnx } = await import('../src/graph/onnx-export.js');
const { noGrad } = await import('../src/tensor/autograd.js');
const { randn } = await import('../src/tensor/creation.js');
const { tidy } = await import('../src/tensor/scope.js');
type Module = import('../src/nn/module.js').Module;

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const dataDir = arg('data-dir', process.env.TOPIARY_DATA ?? '/work/shared/datasets');
const subset = Number(arg('subset', '6000'));
const epochs = Number(arg('epochs', '2'));
const reps = Number(arg('reps', '7'));
const out = arg('out', 'runs/bench-structured');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const train = { model: 'resnet20', dataset: 'mnist', epochs, batchSize: 128, lr: 0.1, momentum: 0.9, weightDecay: 5e-4, schedule: 'cosine', subset, valFraction: 0.1, threads: 2, seed: 0 };
const t0 = performance.now();
const denseDir = join(out, 'dense'), prunedDir = join(out, 'structured');
if (!existsSync(join(denseDir, 'model.safetensors'))) {
  manualSeed(0);
  const r = await runTraining(validate(TrainConfig, train, 'bench'), { out: denseDir, dataDir, progress: false });
  r.model.dispose(); r.data.dispose();
}
if (!existsSync(join(prunedDir, 'model.shrunk.graph.json'))) {
  const { train: tc, prune } = pruneConfigFrom({ ...train, method: 'magnitude', from: denseDir, sparsity: 0.5, scope: 'layer', granularity: 'structured' });
  await runPrune({ train: tc, prune, run: { out: prunedDir, dataDir, progress: false } }, pruneEnv);
}
const trainSeconds = (performance.now() - t0) / 1000;
if (process.argv.includes('--train-only')) process.exit(0);
const { readFileSync } = await import('node:fs');
const denseRes = JSON.parse(readFileSync(join(denseDir, 'result.json'), 'utf8'));
const prunedRes = JSON.parse(readFileSync(join(prunedDir, 'result.json'), 'utf8'));

setNumThreads(1);
const { Conv2d } = await import('../src/nn/layers.js');
const shape = [1, 28, 28];
const dense = createModel('resnet20', { inputShape: shape, numClasses: 10 });
loadWeights(dense, join(denseDir, 'model.safetensors'));
const denseGraph = GraphModule.fromModule(dense, shape);
const shrunk = loadGraphModule(join(prunedDir, 'model.shrunk'));
// The deployed forms: the same graphs with BatchNorm folded into the convolutions (src/graph/fold.ts).
const denseFold = GraphModule.fromModule(dense, shape);
const shrunkFold = loadGraphModule(join(prunedDir, 'model.shrunk'));
denseFold.foldBatchNorm = true;
shrunkFold.foldBatchNorm = true;
for (const m of [dense, denseGraph, shrunk, denseFold, shrunkFold]) m.eval();
const gd = trace(dense, { inputShape: shape });
const sd = graphStats(gd), ss = graphStats(shrunk.graph);
gd.dispose();

/** CPU time of the process (user + system, all threads) in ms: on a shared machine, wall time also counts waiting for a core. */
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
interface Timing { wall: number; cpu: number }
/** `channelsLast`: the conv layout (Conv2d.channelsLast, the library's default on CPU, or NCHW). */
function timeTopiary(m: Module, batch: number, calls: number, channelsLast: boolean): Timing {
  Conv2d.channelsLast = channelsLast;
  const x = randn([batch, ...shape]);
  const once = () => tidy(() => noGrad(() => { m.call(x); }));
  for (let i = 0; i < 3; i++) once();
  const w0 = performance.now(), c0 = cpuMs();
  for (let i = 0; i < calls; i++) once();
  const t = { wall: (performance.now() - w0) / calls, cpu: (cpuMs() - c0) / calls };
  x.dispose();
  return t;
}
// onnxruntime: as before (its default optimization level, 'all' in onnxruntime-node), and the
// deployer's settings: optimization level 'all' stated, one intra-op thread (batch-1 latency: no
// thread hand-off), sequential execution, the BatchNorm-folded export.
const ORT_PLAIN = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' } as const;
const ORT_DEPLOY = { ...ORT_PLAIN, graphOptimizationLevel: 'all' } as const;
async function session(m: Module, fold: boolean, o: typeof ORT_PLAIN | typeof ORT_DEPLOY) {
  return ort.InferenceSession.create(encodeOnnx(m, { inputShape: shape, opset: 17, foldBatchNorm: fold }), o);
}
const sessions = {
  dense: await session(dense, false, ORT_PLAIN), shrunk: await session(shrunk, false, ORT_PLAIN),
  denseDeploy: await session(dense, true, ORT_DEPLOY), shrunkDeploy: await session(shrunk, true, ORT_DEPLOY),
};
async function timeOrt(s: Awaited<ReturnType<typeof session>>, batch: number, calls: number): Promise<Timing> {
  const n = batch * shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, () => Math.random());
  const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', data, [batch, ...shape]) };
  for (let i = 0; i < 3; i++) await s.run(feeds);
  const w0 = performance.now(), c0 = cpuMs();
  for (let i = 0; i < calls; i++) await s.run(feeds);
  return { wall: (performance.now() - w0) / calls, cpu: (cpuMs() - c0) / calls };
}

// Each configuration: a dense and a shrunk measurement, taken next to each other.
type Run = () => Timing | Promise<Timing>;
interface Config { label: string; dense: (b: number, calls: number) => Run; shrunk: (b: number, calls: number) => Run }
const topi = (d: Module, s: Module, cl: boolean, label: string): Config => ({
  label, dense: (b, c) => () => timeTopiary(d, b, c, cl), shrunk: (b, c) => () => timeTopiary(s, b, c, cl),
});
const CONFIGS: Config[] = [
  topi(dense, shrunk, true, 'topiary, as before: dense model vs shrunk GraphModule, channels-last convs'),
  topi(denseGraph, shrunk, true, 'topiary, both GraphModules, channels-last'),
  topi(denseFold, shrunkFold, true, 'topiary, BatchNorm folded, channels-last convs'),
  topi(denseFold, shrunkFold, false, 'topiary, BatchNorm folded, NCHW convs'),
  { label: 'onnxruntime-node, plain export, default options', dense: (b, c) => () => timeOrt(sessions.dense, b, c), shrunk: (b, c) => () => timeOrt(sessions.shrunk, b, c) },
  { label: 'onnxruntime-node, folded export, graph optimization all', dense: (b, c) => () => timeOrt(sessions.denseDeploy, b, c), shrunk: (b, c) => () => timeOrt(sessions.shrunkDeploy, b, c) },
];

const lat: Record<number, { dense: Timing[]; shrunk: Timing[] }[]> = {};
const load: number[] = [];
const { loadavg } = await import('node:os');
for (const batch of [1, 128]) {
  const calls = batch === 1 ? 60 : 6;
  lat[batch] = CONFIGS.map(() => ({ dense: [], shrunk: [] }));
  for (let r = 0; r < reps; r++) {
    load.push(loadavg()[0]);
    // Dense and shrunk next to each other in every configuration; the order flips every repetition.
    const order = CONFIGS.map((_, i) => i);
    if (r % 2) order.reverse();
    for (const i of order) {
      const pair: ['dense' | 'shrunk', Run][] = [['dense', CONFIGS[i].dense(batch, calls)], ['shrunk', CONFIGS[i].shrunk(batch, calls)]];
      if (r % 2) pair.reverse();
      for (const [k, f] of pair) lat[batch][i][k].push(await f());
    }
  }
}
Conv2d.channelsLast = true;
const clock = (arg('clock', 'cpu') === 'wall' ? 'wall' : 'cpu') as keyof Timing;
const med = (ts: Timing[], c: keyof Timing = clock) => median(ts.map((t) => t[c]));
const macCut = sd.macs / ss.macs;
const macFrac = 1 - 1 / macCut;
const ms = (x: number) => (x < 10 ? x.toFixed(3) : x.toFixed(1));
const rows = [
  `| parameters | | ${sd.params.toLocaleString('en-US')} | ${ss.params.toLocaleString('en-US')} | ${(sd.params / ss.params).toFixed(2)}x fewer | | | |`,
  `| MACs per image | | ${sd.macs.toLocaleString('en-US')} | ${ss.macs.toLocaleString('en-US')} | ${macCut.toFixed(2)}x fewer (${(100 * macFrac).toFixed(1)}% removed) | | | |`,
];
for (const b of [1, 128]) {
  CONFIGS.forEach((c, i) => {
    const l = lat[b][i];
    const sp = med(l.dense) / med(l.shrunk);
    const wsp = med(l.dense, 'wall') / med(l.shrunk, 'wall');
    const frac = 1 - 1 / sp;
    rows.push(`| ${c.label} | ${b} | ${ms(med(l.dense))} ms | ${ms(med(l.shrunk))} ms | ${sp.toFixed(2)}x (wall ${wsp.toFixed(2)}x) | ${(sp / macCut).toFixed(2)}${sp >= 0.8 * macCut ? ' (met)' : ''} | ${(100 * frac).toFixed(1)}% | ${(frac / macFrac).toFixed(2)}${frac >= 0.8 * macFrac ? ' (met)' : ''} |`);
  });
}
const summary = {
  subset, epochs, trainSeconds: +trainSeconds.toFixed(1),
  denseTestAccuracy: denseRes.testAccuracy, shrunkTestAccuracy: prunedRes.testAccuracy, shrunk: prunedRes.shrunk,
  clock, loadAverage: load.map((x) => +x.toFixed(1)),
  latencyMs: Object.fromEntries(Object.entries(lat).map(([b, l]) => [b, Object.fromEntries(l.map((x, i) => [CONFIGS[i].label, { dense: +med(x.dense).toFixed(3), shrunk: +med(x.shrunk).toFixed(3) }]))])),
};
console.log(JSON.stringify(summary, null, 2));
console.log('\n| configuration | batch | dense | shrunk (50% of channels) | speed-up | speed-up / MAC cut (target >= 0.8) | latency removed | latency removed / MACs removed (>= 0.8) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n' + rows.join('\n'));
console.log(`\ntest accuracy (MNIST, 10,000 images): dense ${(100 * denseRes.testAccuracy).toFixed(2)}%, pruned + fine-tuned ${(100 * prunedRes.testAccuracy).toFixed(2)}%`);
for (const s of Object.values(sessions)) await s.release();
