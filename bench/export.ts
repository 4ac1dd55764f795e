/**
 * Trace and ONNX export time for VGG-19 and ResNet-56 (random weights, CIFAR shapes [3, 32, 32]).
 * Target (issue 10): trace + export of each in under 5 s. Each repetition builds a fresh model,
 * then times exportOnnx (trace at the default batch of 5, encode, write the file) and, apart, the
 * trace and the encoding alone. Medians over the repetitions.
 *
 *   node --import tsx bench/export.ts [--reps 5] [--no-doc]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed, setNumThreads } from '../src/core/runtime.js';
import { createModel } from '../src/models/registry.js';
import { exportOnnx, graphToOnnx } from '../src/graph/onnx-export.js';
import { trace } from '../src/graph/trace.js';
import { machine, median, parseFlags, since } from './lib/common.js';
import { updateSection } from './report.js';

const flags = parseFlags();
setNumThreads(1);
const dir = mkdtempSync(join(tmpdir(), 'topiary-bench-export-'));
const rows: { model: string; params: number; nodes: number; total: number; traceS: number; encodeS: number; mb: number; runs: number[] }[] = [];
try {
  for (const name of ['vgg19', 'resnet56']) {
    const total: number[] = [], tr: number[] = [], enc: number[] = [];
    let bytes = 0, nodes = 0, params = 0;
    for (let r = 0; r < flags.reps; r++) {
      manualSeed(r);
      const m = createModel(name, { inputShape: [3, 32, 32], numClasses: 10 });
      m.eval();
      params = m.namedParameters().reduce((s, [, p]) => s + p.numel, 0);
      let t0 = performance.now();
      bytes = exportOnnx(m, { inputShape: [3, 32, 32], out: join(dir, `${name}.onnx`) }).bytes;
      total.push(since(t0));
      t0 = performance.now();
      const g = trace(m, { inputShape: [3, 32, 32] });
      tr.push(since(t0));
      nodes = g.nodes.length;
      t0 = performance.now();
      graphToOnnx(g, m.stateDict());
      enc.push(since(t0));
      g.dispose();
      m.dispose();
    }
    rows.push({ model: name, params, nodes, total: median(total), traceS: median(tr), encodeS: median(enc), mb: bytes / 1e6, runs: total });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const mc = machine();
console.log(JSON.stringify({ bench: 'export', reps: flags.reps, machine: mc, rows }));
if (!flags.noDoc) {
  const day = new Date().toISOString().slice(0, 10);
  const body = [
    `Measured ${day}, ${mc.cores}-core CPU (${mc.cpu}; 1-minute load average ${mc.load1.toFixed(1)}), one thread, Node ${mc.node}.`,
    `Command: \`node --import tsx bench/export.ts --reps ${flags.reps}\`. Random weights, CIFAR shapes [3, 32, 32]; each repetition builds`,
    'a fresh model and times `exportOnnx` (trace at batch 5, encode with protobuf-es, write the file); trace and encoding are also',
    'timed alone. Medians over the repetitions. Target: trace + export under 5 s each.',
    '',
    '| Model | Parameters | Graph nodes | Trace | Encode | Trace + export (target < 5 s) | File |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.model} | ${r.params.toLocaleString('en-US')} | ${r.nodes} | ${r.traceS.toFixed(2)} s | ${r.encodeS.toFixed(2)} s | ` +
      `${r.total.toFixed(2)} s (runs ${r.runs.map((x) => x.toFixed(2)).join(', ')}) | ${r.mb.toFixed(1)} MB |`),
  ].join('\n');
  updateSection('Trace and ONNX export', 'export', body);
}
