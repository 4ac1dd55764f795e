/**
 * ONNX import (issue 12): import time of ResNet-18 (CIFAR, 11.17 M) and VGG-11 with BatchNorm
 * (9.23 M) exported by PyTorch 1.13 (scripts/make-onnx-fixtures.py --zoo, random weights), and the
 * imported ResNet-18's forward pass (eval) and training step (SGD, cross-entropy) at batch 32,
 * against topiary's own zoo resnet18 (the same network) and PyTorch running the original module.
 * One thread everywhere; medians over the repetitions. Targets: import under 2 s; imported within
 * 5% of the zoo model; at most 1.0x PyTorch.
 *
 *   node --import tsx bench/onnx-import.ts [--reps 5] [--no-doc]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed, setNumThreads } from '../src/core/runtime.js';
import { importOnnx } from '../src/graph/onnx-import.js';
import { createModel } from '../src/models/registry.js';
import type { Module } from '../src/nn/module.js';
import { SGD } from '../src/optim/optimizer.js';
import { noGrad } from '../src/tensor/autograd.js';
import { randint, randn } from '../src/tensor/creation.js';
import { crossEntropy } from '../src/tensor/nn-ops.js';
import { tidy } from '../src/tensor/scope.js';
import { machine, median, parseFlags, since } from './lib/common.js';
import { updateSection } from './report.js';

const flags = parseFlags();
setNumThreads(1);
const B = 32;
const dir = mkdtempSync(join(tmpdir(), 'topiary-bench-onnx-import-'));

function timeModel(m: Module, reps: number): { fwd: number; step: number } {
  const x = randn([B, 3, 32, 32]), y = randint(0, 10, [B]);
  const opt = new SGD(m.parameters(), { lr: 0.01, momentum: 0.9 });
  const fwd: number[] = [], step: number[] = [];
  m.eval();
  tidy(() => noGrad(() => m.call(x))); // warm-up
  for (let r = 0; r < reps; r++) { const t0 = performance.now(); tidy(() => noGrad(() => m.call(x).dataSync())); fwd.push(since(t0)); }
  m.train();
  tidy(() => { opt.zeroGrad(); crossEntropy(m.call(x), y).backward(); opt.step(); });
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    tidy(() => { opt.zeroGrad(); const l = crossEntropy(m.call(x), y); l.backward(); opt.step(); l.item(); });
    step.push(since(t0));
  }
  x.dispose(); y.dispose();
  return { fwd: median(fwd), step: median(step) };
}

const torchScript = `
import sys, time, torch, torch.nn.functional as F
sys.path.insert(0, 'scripts'); import importlib.util
spec = importlib.util.spec_from_file_location('fx', 'scripts/make-onnx-fixtures.py'); fx = importlib.util.module_from_spec(spec); spec.loader.exec_module(fx)
torch.set_num_threads(1); torch.manual_seed(0)
m = fx.ResNet18(64); x = torch.randn(${B}, 3, 32, 32); y = torch.randint(0, 10, (${B},))
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
def med(v): v = sorted(v); return v[len(v) // 2]
m.eval()
with torch.no_grad(): m(x)
f = []
for _ in range(${flags.reps}):
    t = time.perf_counter()
    with torch.no_grad(): m(x)
    f.append(time.perf_counter() - t)
m.train(); opt.zero_grad(); F.cross_entropy(m(x), y).backward(); opt.step()
s = []
for _ in range(${flags.reps}):
    t = time.perf_counter(); opt.zero_grad(); l = F.cross_entropy(m(x), y); l.backward(); opt.step(); l.item(); s.append(time.perf_counter() - t)
print(med(f), med(s))
`;

try {
  const gen = spawnSync('/usr/bin/python3', ['scripts/make-onnx-fixtures.py', '--zoo', dir, '64'], { encoding: 'utf8' });
  if (gen.status !== 0) throw new Error(`fixture script failed: ${gen.stderr}`);
  const imports: Record<string, number> = {};
  for (const name of ['resnet18', 'vgg11_bn']) {
    const ts: number[] = [];
    for (let r = 0; r < flags.reps; r++) { const t0 = performance.now(); importOnnx(join(dir, `${name}.onnx`)).dispose(); ts.push(since(t0)); }
    imports[name] = median(ts);
  }
  manualSeed(0);
  const imported = importOnnx(join(dir, 'resnet18.onnx'));
  const zoo = createModel('resnet18', { inputShape: [3, 32, 32], numClasses: 10 });
  const ti = timeModel(imported, flags.reps), tz = timeModel(zoo, flags.reps);
  imported.dispose(); zoo.dispose();
  const pt = spawnSync('/usr/bin/python3', ['-c', torchScript], { encoding: 'utf8' });
  const [pf, ps] = pt.status === 0 ? pt.stdout.trim().split(/\s+/).map(Number) : [NaN, NaN];
  const mc = machine();
  const out = { bench: 'onnx-import', reps: flags.reps, machine: mc, imports, imported: ti, zoo: tz, pytorch: { fwd: pf, step: ps } };
  console.log(JSON.stringify(out));
  if (!flags.noDoc) {
    const day = new Date().toISOString().slice(0, 10);
    const r = (a: number, b: number) => (a / b).toFixed(2);
    const body = [
      `Measured ${day}, ${mc.cores}-core CPU (${mc.cpu}; 1-minute load average ${mc.load1.toFixed(1)}), one thread, Node ${mc.node}.`,
      `Command: \`node --import tsx bench/onnx-import.ts --reps ${flags.reps}\`. PyTorch 1.13 exports the networks (random weights,`,
      '`scripts/make-onnx-fixtures.py --zoo`); import = read, decode, map and run the graph at two batch sizes for its shapes.',
      `Forward (eval, no grad) and training step (SGD, cross-entropy) at batch ${B}, CIFAR shapes; medians.`,
      '',
      '| | Import (target < 2 s) |',
      '| --- | ---: |',
      `| ResNet-18 (11.17 M) | ${imports.resnet18.toFixed(2)} s |`,
      `| VGG-11 BN (9.23 M) | ${imports.vgg11_bn.toFixed(2)} s |`,
      '',
      `| ResNet-18, batch ${B} | Imported | Zoo resnet18 | PyTorch | Imported / zoo (target <= 1.05) | Imported / PyTorch (target <= 1.0) |`,
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      `| Forward | ${ti.fwd.toFixed(3)} s | ${tz.fwd.toFixed(3)} s | ${pf.toFixed(3)} s | ${r(ti.fwd, tz.fwd)} | ${r(ti.fwd, pf)} |`,
      `| Training step | ${ti.step.toFixed(3)} s | ${tz.step.toFixed(3)} s | ${ps.toFixed(3)} s | ${r(ti.step, tz.step)} | ${r(ti.step, ps)} |`,
    ].join('\n');
    updateSection('ONNX import', 'onnx-import', body);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
