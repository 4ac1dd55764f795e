/** docs/results/deployed.md and the README's table, from bench/deployed.ts's deploy and latency records. */
import type { Deployed, Latency } from './deployed-measure.js';
import { fmtKiB, ratio, type Method } from './deployed-methods.js';

interface LatencyFile { date: string; reps: number; load: number[]; cpu: string; cores: number; libtorch: string; node: string; command: string; rows: Latency[] }

const pct = (x: number) => (100 * x).toFixed(2);
const us = (x: number | undefined) => (x === undefined ? 'n/a' : x < 1000 ? `${x.toFixed(1)} µs` : `${(x / 1000).toFixed(2)} ms`);
const lat = (l: LatencyFile | null, id: string, batch: number) => l?.rows.find((r) => r.id === id && r.batch === batch);
const kept = (d: Deployed) => (d.form === 'sparse path' ? `${d.nonzero.toLocaleString('en-US')} of ${d.params.toLocaleString('en-US')} parameters nonzero (${(100 * d.nonzero / d.params).toFixed(1)}%)` : `${d.params.toLocaleString('en-US')} parameters (of ${d.denseParams.toLocaleString('en-US')} before)`);

/** Speed-up of the deployed form over the dense model in topiary at one batch size, "n/a" when not measured. */
function speed(l: LatencyFile | null, id: string, batch: number, rt: 'topiary' | 'ort' = 'topiary'): string {
  const r = lat(l, id, batch);
  if (!r) return 'n/a';
  // The dense row is the reference: its time, not a ratio (its "deployed" form is the same network).
  return id === 'dense' ? `${us(r[rt].dense)} (dense)` : ratio(r[rt].dense, r[rt].deployed);
}

export function renderReadmeTable(rows: Deployed[], l: LatencyFile | null): string {
  const head = [
    `**Every method's MNIST result, deployed** ([docs/results/deployed.md](docs/results/deployed.md): commands, budgets, every file; seed 0, ${rows[0]?.date.slice(0, 10) ?? ''}). ` +
      'Accuracy on the 10,000 test images in topiary (the deployed form) and in onnxruntime-node (the exported ONNX file); ' +
      'latency: speed-up of the deployed form (sparse path, or the smaller model) over the dense model in topiary (the dense row: its own time), one thread, CPU time, median of alternating rounds' +
      (l ? ` (load average ${l.load.map((x) => x.toFixed(1)).join(' → ')} on ${l.cores} cores)` : '') + '.',
    '',
    '| method (budget) | test accuracy, topiary / onnxruntime | weights | safetensors: dense → compressed | ONNX / gzip | smaller model | batch 1 | batch 128 |',
    '|---|---:|---|---:|---:|---:|---:|---:|',
  ];
  const body = rows.map((d) => {
    return `| ${d.label} (${d.short ?? d.budget}) | ${pct(d.topiaryAccuracy)} / ${pct(d.ortAccuracy)} | ${kept(d)} | ${fmtKiB(d.files.dense)} → ${fmtKiB(d.files.sparse)} | ${fmtKiB(d.files.onnx)} / ${fmtKiB(d.files.onnxGzip)} | ${d.files.shrunk ? fmtKiB(d.files.shrunk) : '—'} | ${speed(l, d.id, 1)} | ${speed(l, d.id, 128)} |`;
  });
  return [...head, ...body].join('\n');
}

export function renderDoc(rows: Deployed[], l: LatencyFile | null, ms: Method[]): string {
  const out: string[] = [];
  out.push('# Every method\'s MNIST result as a deployed model', '');
  out.push('Written by `node --import tsx bench/deployed.ts doc` from the records of its other parts (issue 10: "a results table in the README: for each method\'s reproduced MNIST result, the deployed model\'s size and latency beside its accuracy"):', '');
  out.push('```sh',
    'nice -n 15 node --import tsx bench/deployed.ts train --jobs 2      # every run below, through the CLI (each step nice -n 15, TOPIARY_THREADS=1)',
    'node --import tsx bench/deployed.ts deploy                         # files, topiary export, accuracies in topiary and onnxruntime-node',
    `${l?.command ?? 'flock -x /tmp/bench.lock node --import tsx bench/deployed.ts latency --reps 9'}`,
    'node --import tsx bench/deployed.ts doc', '```', '');
  out.push('Seed 0, one run per method (the reproductions in docs/results/ have 3 seeds; their figure is quoted beside ours). ' +
    'Each method runs the recipe of its reproduction (docs/results/pmp.md, evo-pop.md, hier-moea.md) at the budget its row names: "reduced" is pmp.md\'s reduced budget, the full data with a tenth of the epochs, so those accuracies are below the full-budget ones. ' +
    'The run folders are kept under /work/runs-deployed (not in git).', '');
  if (l) {
    out.push(`Latency measured ${l.date.slice(0, 16).replace('T', ' ')} UTC on ${l.cores} × ${l.cpu}, libtorch ${l.libtorch} CPU, Node ${l.node}; one thread (setNumThreads(1), OMP/OPENBLAS_NUM_THREADS=1, onnxruntime intra/inter-op threads 1); ` +
      `1-minute load average ${l.load.map((x) => x.toFixed(2)).join(' at the start, ')} at the end (a shared machine: the other sessions' jobs were running). ` +
      `CPU time per forward pass (user + system of the process), median of ${l.reps} rounds in which the dense model and the deployed form alternate (the order reversed every other round), random inputs, eval mode, no autograd. ` +
      'For the unstructured methods the dense model is the same weights through the dense kernels (withDenseInference); for the structured and EVO-POP models it is the full-size network.', '');
  }
  out.push('## The table', '', renderReadmeTable(rows, l), '');
  out.push('"weights": for the sparse models, nonzero weights and biases of all parameters; "compressed": the sparse safetensors format of src/nn/sparse (how each came back is in its section below). ' +
    'ONNX is `topiary export --from <run>`\'s file, dense initializers (onnxruntime gains nothing from sparse ones), with its gzip size as TF-MOT reports it. ' +
    '"smaller model": the shrunk GraphModule (model.shrunk.safetensors + model.shrunk.graph.json) or EVO-POP\'s pruned Sequential (model.safetensors + architecture.json).', '');
  out.push('## Per method', '');
  for (const d of rows) {
    const m = ms.find((x) => x.id === d.id);
    out.push(`### ${d.label}`, '');
    out.push(`Budget: ${d.budget}.`, '');
    out.push('```sh', ...d.commands, '```', '');
    for (const r of d.recipes ?? []) {
      const { file, ...body } = r;
      out.push(`${String(file)} (written by the train part; YAML is a superset of JSON):`, '', '```json', JSON.stringify(body), '```', '');
    }
    const l1 = lat(l, d.id, 1), l128 = lat(l, d.id, 128);
    out.push('| | |', '|---|---|',
      `| test accuracy: the run's result.json / the deployed form in topiary / the ONNX file in onnxruntime-node | ${pct(d.resultTestAccuracy)}% / ${pct(d.topiaryAccuracy)}% / ${pct(d.ortAccuracy)}% (${d.disagree} of 10,000 predictions differ; max abs logit difference ${d.maxAbsDiff.toExponential(1)}) |`,
      ...(d.reproduced ? [`| the reproduction's figure (3 seeds) | ${d.reproduced} |`] : []),
      `| deployed form | ${d.form}; ${kept(d)} |`,
      `| \`topiary export\` picked | ${d.exported} |`,
      `| files | dense safetensors ${fmtKiB(d.files.dense)}; compressed ${fmtKiB(d.files.sparse)} (1/${(d.files.dense / d.files.sparse).toFixed(1)}, gzip ${fmtKiB(d.files.sparseGzip)}; loaded back: ${d.sparseRoundTrip}); ONNX ${fmtKiB(d.files.onnx)}, gzip ${fmtKiB(d.files.onnxGzip)}${d.files.shrunk ? `; smaller model ${fmtKiB(d.files.shrunk)}` : ''} |`,
      ...(l1 && l128 ? [
        `| topiary, dense / deployed, batch 1 | ${us(l1.topiary.dense)} / ${us(l1.topiary.deployed)}: ${ratio(l1.topiary.dense, l1.topiary.deployed)} |`,
        `| topiary, dense / deployed, batch 128 | ${us(l128.topiary.dense)} / ${us(l128.topiary.deployed)}: ${ratio(l128.topiary.dense, l128.topiary.deployed)} |`,
        `| onnxruntime-node, dense / deployed ONNX, batch 1 | ${us(l1.ort.dense)} / ${us(l1.ort.deployed)}: ${ratio(l1.ort.dense, l1.ort.deployed)} |`,
        `| onnxruntime-node, dense / deployed ONNX, batch 128 | ${us(l128.ort.dense)} / ${us(l128.ort.deployed)}: ${ratio(l128.ort.dense, l128.ort.deployed)} |`,
      ] : ['| latency | not measured |']),
      '');
    if (d.notes.length) out.push(...d.notes.map((n) => `- ${n}`), '');
    void m;
  }
  const missing = ms.filter((m) => m.id !== 'pmp_98_full' && !rows.some((d) => d.id === m.id));
  if (missing.length) out.push('## Not in the table', '', ...missing.map((m) => `- ${m.label}: its run did not finish in this session's time`), '');
  return out.join('\n');
}
