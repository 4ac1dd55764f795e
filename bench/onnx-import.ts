/**
 * ONNX import (issue 12): import time of ResNet-18 (CIFAR, 11.17 M) and VGG-11 with BatchNorm
 * (9.23 M) exported by PyTorch 1.13 (scripts/make-onnx-fixtures.py --zoo, random weights), and the
 * imported ResNet-18's forward pass (eval) and training step (SGD, cross-entropy) at batch 32,
 * against topiary's own zoo resnet18 (the same network, the imported weights loaded into it) and
 * PyTorch running the original module. One thread everywhere.
 *
 * Alternating: every repetition times the three engines back to back, in a rotating order
 * (imported, zoo, PyTorch; zoo, PyTorch, imported; ...), each after its own warm-up; PyTorch runs
 * in one long-lived python process that times each request itself (no process start, no pipe in
 * the number). The ratios are per repetition (same moment, same load), reported as the median and
 * the range over repetitions, with the load average before and after. Targets: import under 2 s;
 * imported within 5% of the zoo model; at most 1.0x PyTorch.
 *
 *   flock -x /tmp/bench.lock node --import tsx bench/onnx-import.ts [--reps 7] [--no-doc]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { manualSeed, setNumThreads } from '../src/core/runtime.js';
import { importOnnx } from '../src/graph/onnx-import.js';
import type { GraphModule } from '../src/graph/run.js';
import { trace } from '../src/graph/trace.js';
import type { Value } from '../src/graph/ir.js';
import { createModel } from '../src/models/registry.js';
import type { Module } from '../src/nn/module.js';
import { SGD } from '../src/optim/optimizer.js';
import { noGrad } from '../src/tensor/autograd.js';
import { randint, randn } from '../src/tensor/creation.js';
import { crossEntropy } from '../src/tensor/nn-ops.js';
import { tidy } from '../src/tensor/scope.js';
import { machine, median, parseFlags, PYTHON, since } from './lib/common.js';
import { updateSection } from './report.js';

const flags = parseFlags();
setNumThreads(1);
const B = 32;
const dir = mkdtempSync(join(tmpdir(), 'topiary-bench-onnx-import-'));
const say = (m: string) => process.stderr.write(`onnx-import bench: ${m}\n`);

/** A topiary model ready to time one forward (eval) or one training step, each call measured alone. */
function engine(m: Module): { fwd: () => number; step: () => number; dispose: () => void } {
  const x = randn([B, 3, 32, 32]), y = randint(0, 10, [B]);
  const opt = new SGD(m.parameters(), { lr: 0.01, momentum: 0.9 });
  const fwd = () => {
    m.eval();
    tidy(() => noGrad(() => m.call(x).dataSync())); // warm-up (also after the other engines ran)
    const t0 = performance.now();
    tidy(() => noGrad(() => m.call(x).dataSync()));
    return since(t0);
  };
  const once = () => tidy(() => { opt.zeroGrad(); const l = crossEntropy(m.call(x), y); l.backward(); opt.step(); l.item(); });
  const step = () => {
    m.train();
    once();
    const t0 = performance.now();
    once();
    return since(t0);
  };
  return { fwd, step, dispose: () => { opt.dispose?.(); x.dispose(); y.dispose(); } };
}

/** PyTorch in one python process: 'f' / 's' on stdin -> the seconds of one forward / step (after a warm-up) on stdout. */
const torchScript = `
import sys, time, torch, torch.nn.functional as F
import importlib.util
spec = importlib.util.spec_from_file_location('fx', 'scripts/make-onnx-fixtures.py'); fx = importlib.util.module_from_spec(spec); spec.loader.exec_module(fx)
torch.set_num_threads(1); torch.manual_seed(0)
m = fx.ResNet18(64); x = torch.randn(${B}, 3, 32, 32); y = torch.randint(0, 10, (${B},))
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
def fwd():
    m.eval()
    with torch.no_grad(): m(x)
    t = time.perf_counter()
    with torch.no_grad(): m(x)
    return time.perf_counter() - t
def once():
    opt.zero_grad(); l = F.cross_entropy(m(x), y); l.backward(); opt.step(); l.item()
def step():
    m.train(); once()
    t = time.perf_counter(); once(); return time.perf_counter() - t
print('ready', flush=True)
for line in sys.stdin:
    c = line.strip()
    if c == 'q': break
    print(fwd() if c == 'f' else step(), flush=True)
`;

function pytorch(): { ask: (c: 'f' | 's') => Promise<number>; close: () => void } {
  const p = spawn(PYTHON, ['-c', torchScript], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: p.stdout! })[Symbol.asyncIterator]();
  const next = async () => { const r = await lines.next(); if (r.done) throw new Error('bench: the PyTorch process ended'); return r.value; };
  const ready = next();
  return {
    ask: async (c) => { await ready; p.stdin!.write(`${c}\n`); return Number(await next()); },
    close: () => { p.stdin!.end('q\n'); },
  };
}

/**
 * Copy the imported model's tensors into the zoo model. The two graphs are the same network
 * (20 conv, 20 BatchNorm, 17 relu, 8 add, pool, flatten, linear) with their nodes in another order,
 * so their values are paired by walking both back from the output (an add's operands may come
 * swapped); the outputs are then checked equal.
 */
function sameWeights(from: GraphModule, to: Module): void {
  const g = trace(to, { inputShape: [3, 32, 32] });
  const pair = new Map<Value, Value>();
  const sig = (v: Value | null) => (v === null ? 'null' : v.kind === 'op' ? v.producer!.op : v.kind);
  const walk = (a: Value, b: Value): void => {
    if (pair.has(a)) return;
    pair.set(a, b);
    if (a.kind !== 'op') return;
    const na = a.producer!, nb = b.producer!;
    if (!nb || na.op !== nb.op || na.inputs.length !== nb.inputs.length) throw new Error(`bench: the imported graph is not the zoo resnet18's (${na.op} vs ${nb?.op})`);
    let ins = nb.inputs;
    if (na.op === 'add' && na.inputs.some((v, k) => sig(v) !== sig(ins[k]))) ins = [...ins].reverse();
    na.inputs.forEach((v, k) => { if (v && ins[k]) walk(v, ins[k]!); });
  };
  walk(from.graph.outputs[0], g.outputs[0]);
  const src = from.stateDict(), dst = to.stateDict();
  noGrad(() => { for (const [a, b] of pair) if (a.kind === 'param' || a.kind === 'buffer') dst[b.name].copy_(src[a.name]); });
  g.dispose();
  const x = randn([2, 3, 32, 32]);
  const d = tidy(() => noGrad(() => from.eval().call(x).sub(to.eval().call(x)).abs().max().item() as number));
  x.dispose();
  if (!(d <= 1e-4)) throw new Error(`bench: the zoo model with the imported weights differs by ${d}`);
  say(`zoo resnet18 holds the imported weights (outputs differ by ${d.toExponential(1)})`);
}

const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;

try {
  say('exporting ResNet-18 and VGG-11 from PyTorch');
  const gen = spawnSync(PYTHON, ['scripts/make-onnx-fixtures.py', '--zoo', dir, '64'], { encoding: 'utf8' });
  if (gen.status !== 0) throw new Error(`fixture script failed: ${gen.stderr}`);
  const load0 = loadavg()[0];
  const imports: Record<string, number[]> = { resnet18: [], vgg11_bn: [] };
  for (let r = 0; r < flags.reps; r++) {
    for (const name of r % 2 ? ['vgg11_bn', 'resnet18'] : ['resnet18', 'vgg11_bn']) {
      const t0 = performance.now();
      importOnnx(join(dir, `${name}.onnx`)).dispose();
      imports[name].push(since(t0));
    }
  }
  say(`imports timed (${flags.reps} each)`);
  manualSeed(0);
  const imported = importOnnx(join(dir, 'resnet18.onnx'));
  const zoo = createModel('resnet18', { inputShape: [3, 32, 32], numClasses: 10 });
  sameWeights(imported, zoo);
  const ei = engine(imported), ez = engine(zoo), pt = pytorch();
  const t = { imported: { fwd: [] as number[], step: [] as number[] }, zoo: { fwd: [] as number[], step: [] as number[] }, pytorch: { fwd: [] as number[], step: [] as number[] } };
  const names = ['imported', 'zoo', 'pytorch'] as const;
  // One untimed round first: the first calls of each engine (allocator, thread pool, page faults) are not the steady state.
  for (const kind of ['fwd', 'step'] as const) { ei[kind](); ez[kind](); await pt.ask(kind === 'fwd' ? 'f' : 's'); }
  for (let r = 0; r < flags.reps; r++) {
    for (const kind of ['fwd', 'step'] as const) {
      for (let k = 0; k < 3; k++) {
        const who = names[(r + k) % 3];
        const s = who === 'pytorch' ? await pt.ask(kind === 'fwd' ? 'f' : 's') : (who === 'imported' ? ei : ez)[kind]();
        t[who][kind].push(s);
        say(`rep ${r + 1} ${kind} ${who}: ${s.toFixed(3)} s`);
      }
    }
  }
  pt.close();
  ei.dispose(); ez.dispose(); imported.dispose(); zoo.dispose();
  const load1 = loadavg()[0];
  const ratio = (a: number[], b: number[]) => a.map((v, i) => v / b[i]);
  const rows = (['fwd', 'step'] as const).map((k) => ({
    kind: k, imported: median(t.imported[k]), zoo: median(t.zoo[k]), pytorch: median(t.pytorch[k]),
    vsZoo: ratio(t.imported[k], t.zoo[k]), vsTorch: ratio(t.imported[k], t.pytorch[k]), zooVsTorch: ratio(t.zoo[k], t.pytorch[k]),
  }));
  const mc = machine();
  console.log(JSON.stringify({ bench: 'onnx-import', reps: flags.reps, machine: mc, load: [load0, load1], imports, times: t }));
  if (!flags.noDoc) {
    const day = new Date().toISOString().slice(0, 10);
    const body = [
      `Measured ${day}, ${mc.cores}-core CPU (${mc.cpu}; 1-minute load average ${load0.toFixed(1)} before, ${load1.toFixed(1)} after: the machine is shared), one thread, Node ${mc.node}.`,
      `Command: \`flock -x /tmp/bench.lock node --import tsx bench/onnx-import.ts --reps ${flags.reps}\`. PyTorch 1.13 exports the networks (random weights,`,
      '`scripts/make-onnx-fixtures.py --zoo`); import = read, decode, map and run the graph at two batch sizes for its shapes.',
      `Forward (eval, no grad) and training step (SGD, cross-entropy) at batch ${B}, CIFAR shapes; the zoo resnet18 holds the imported weights.`,
      `After one untimed round, each of the ${flags.reps} repetitions times the three engines back to back in a rotating order; times are medians, ratios the median of the per-repetition ratios with their range.`,
      '',
      '| | Import, median (range) (target < 2 s) |',
      '| --- | ---: |',
      `| ResNet-18 (11.17 M) | ${median(imports.resnet18).toFixed(2)} s (${range(imports.resnet18)}) |`,
      `| VGG-11 BN (9.23 M) | ${median(imports.vgg11_bn).toFixed(2)} s (${range(imports.vgg11_bn)}) |`,
      '',
      `| ResNet-18, batch ${B} | Imported | Zoo resnet18 | PyTorch | Imported / zoo (target <= 1.05) | Imported / PyTorch (target <= 1.0) | Zoo / PyTorch |`,
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map((r) => `| ${r.kind === 'fwd' ? 'Forward' : 'Training step'} | ${r.imported.toFixed(3)} s | ${r.zoo.toFixed(3)} s | ${r.pytorch.toFixed(3)} s | ` +
        `${median(r.vsZoo).toFixed(2)} (${range(r.vsZoo)}) | ${median(r.vsTorch).toFixed(2)} (${range(r.vsTorch)}) | ${median(r.zooVsTorch).toFixed(2)} (${range(r.zooVsTorch)}) |`),
    ].join('\n');
    updateSection('ONNX import', 'onnx-import', body);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
