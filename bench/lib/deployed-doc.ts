/** docs/results/deployed.md and the README's table, from bench/deployed.ts's deploy and latency records. */
import type { Deployed, Latency } from './deployed-measure.js';
import { fmtKiB, ratio, type Method } from './deployed-methods.js';

interface LatencyFile { date: string; reps: number; load: number[]; loads?: number[][]; commands?: string[]; cpu: string; cores: number; libtorch: string; node: string; command: string; rows: Latency[] }

const pct = (x: number) => (100 * x).toFixed(2);
const MODEL: Record<string, string> = { lenet_300_100: 'LeNet-300-100', lenet5: 'LeNet-5', mlp: 'MLP 784-512-256-10' };
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
      (l ? ` (1-minute load average ${(l.loads ?? [l.load]).map((p) => p.map((x) => x.toFixed(1)).join(' → ')).join(', then ')} on ${l.cores} cores)` : '') + '.',
    '',
    '| method (budget) | model | test accuracy, topiary / onnxruntime | weights | safetensors: dense → compressed | ONNX / gzip | smaller model | batch 1 | batch 128 |',
    '|---|---|---:|---|---:|---:|---:|---:|---:|',
  ];
  const body = rows.map((d) => {
    return `| ${d.label} (${d.short ?? d.budget}) | ${MODEL[d.model] ?? d.model} | ${pct(d.topiaryAccuracy)} / ${pct(d.ortAccuracy)} | ${kept(d)} | ${fmtKiB(d.files.dense)} → ${fmtKiB(d.files.sparse)} (1/${(d.files.dense / d.files.sparse).toFixed(1)}) | ${fmtKiB(d.files.onnx)} / ${fmtKiB(d.files.onnxGzip)} | ${d.files.shrunk ? fmtKiB(d.files.shrunk) : '—'} | ${speed(l, d.id, 1)} | ${speed(l, d.id, 128)} |`;
  });
  return [...head, ...body].join('\n');
}

export function renderDoc(rows: Deployed[], l: LatencyFile | null, ms: Method[]): string {
  const out: string[] = [];
  out.push('# Every method\'s MNIST result as a deployed model', '');
  out.push('Written by `node --import tsx bench/deployed.ts doc` from the records of its other parts (issue 10: "a results table in the README: for each method\'s reproduced MNIST result, the deployed model\'s size and latency beside its accuracy"):', '');
  out.push('```sh',
    'node --import tsx bench/deployed.ts train --jobs 2                 # every run below but PMP at the full budget, through the CLI (each step under nice -n 15, one thread)',
    'node --import tsx bench/deployed.ts train --only pmp_98_full       # PMP 98% at the full budget',
    'node --import tsx bench/deployed.ts deploy                         # files, topiary export, accuracies in topiary and onnxruntime-node',
    ...(l?.commands ?? [l?.command ?? 'flock -x /tmp/bench.lock node --import tsx bench/deployed.ts latency --reps 7']),
    'node --import tsx bench/deployed.ts doc', '```', '');
  out.push('Seed 0, one run per method (the reproductions in docs/results/ have 3 seeds; their figure is quoted beside ours). ' +
    'Each method runs the recipe of its reproduction (docs/results/pmp.md, evo-pop.md, hier-moea.md) at the budget its row names: "reduced" is pmp.md\'s reduced budget, the full data with a tenth of the epochs, so those accuracies are below the full-budget ones. ' +
    'The run folders are kept under /work/runs-deployed (not in git).', '');
  if (l) {
    out.push(`Latency measured ${l.date.slice(0, 16).replace('T', ' ')} UTC on ${l.cores} × ${l.cpu}, libtorch ${l.libtorch} CPU, Node ${l.node}; one thread (setNumThreads(1), OMP/OPENBLAS_NUM_THREADS=1, onnxruntime intra/inter-op threads 1); ` +
      `1-minute load average ${(l.loads ?? [l.load]).map((p) => `${p[0].toFixed(2)} at the start and ${p[1].toFixed(2)} at the end`).join('; then ')} (${(l.loads ?? []).length > 1 ? 'one pair per command above; ' : ''}a shared machine: the other sessions' jobs were running). ` +
      `CPU time per forward pass (user + system of the process), median of ${l.reps} rounds in which the dense model and the deployed form alternate (the order reversed every other round), random inputs, eval mode, no autograd. ` +
      'For the unstructured methods the dense model is the same weights through the dense kernels (withDenseInference); for the structured and EVO-POP models it is the full-size network.', '');
  }
  out.push('## The table', '', renderReadmeTable(rows, l), '');
  out.push('"weights": for the sparse models, nonzero weights and biases of all parameters; "compressed": the sparse safetensors format of src/nn/sparse (how each came back is in its section below). ' +
    'ONNX is `topiary export --from <run>`\'s file, dense initializers (onnxruntime gains nothing from sparse ones), with its gzip size as TF-MOT reports it. ' +
    '"smaller model": the shrunk GraphModule (model.shrunk.safetensors + model.shrunk.graph.json) or EVO-POP\'s pruned Sequential (model.safetensors + architecture.json).', '');
  out.push(...findings(rows, l), '');
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

/** What the numbers say, and what broke in the chain (computed from the records, so a rerun keeps it true). */
function findings(rows: Deployed[], l: LatencyFile | null): string[] {
  const out = ['## What the table shows, and what the chain lacks', ''];
  const sparse = rows.filter((d) => d.form === 'sparse path' && d.id !== 'dense' && d.model === 'lenet_300_100');
  const sp = (b: number) => sparse.map((d) => lat(l, d.id, b)).filter((r): r is Latency => r !== undefined).map((r) => r.topiary.dense / r.topiary.deployed);
  const ortSp = sparse.map((d) => lat(l, d.id, 128)).filter((r): r is Latency => r !== undefined).map((r) => r.ort.dense / r.ort.deployed);
  const range = (xs: number[]) => (xs.length ? `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}x` : 'n/a');
  const agree = rows.every((d) => d.disagree === 0 && Math.abs(d.topiaryAccuracy - d.ortAccuracy) < 1e-9);
  out.push(`- **Accuracy survives deployment.** ${agree ? 'In every row' : 'Not in every row (see below):'} the deployed form in topiary, the exported ONNX file in onnxruntime-node and the run's own result.json give the same test accuracy; ` +
    `${rows.map((d) => d.disagree).reduce((a, b) => a + b, 0)} of ${(rows.length * 10000).toLocaleString('en-US')} predictions differ between the two runtimes (largest logit difference ${Math.max(...rows.map((d) => d.maxAbsDiff)).toExponential(1)}).`);
  if (sparse.length) {
    const at98 = sparse.filter((d) => d.id !== 'lth');
    const sz = at98.map((d) => d.files.dense / d.files.sparse);
    const sp98 = (b: number) => at98.map((d) => lat(l, d.id, b)).filter((r): r is Latency => r !== undefined).map((r) => r.topiary.dense / r.topiary.deployed);
    const lthRow = sparse.find((d) => d.id === 'lth');
    out.push(`- **Unstructured LeNet-300-100 at 98%** (${at98.length} models): the compressed file is 1/${Math.min(...sz).toFixed(0)} to 1/${Math.max(...sz).toFixed(0)} of the dense one (the issue's target: at most 1/20); ` +
      `the sparse path is ${range(sp98(1))} faster than dense at batch 1 and ${range(sp98(128))} at batch 128, against the issue's targets of 4x and 8x (met at batch 128 by ${sp98(128).filter((x) => x >= 8).length} of ${sp98(128).length}, at batch 1 by ${sp98(1).filter((x) => x >= 4).length} of ${sp98(1).length}). ` +
      (lthRow ? `LTH's model is less sparse (${(100 * (1 - lthRow.nonzero / lthRow.params)).toFixed(1)}% of all parameters zero): 1/${(lthRow.files.dense / lthRow.files.sparse).toFixed(0)}, ${speed(l, 'lth', 1)} / ${speed(l, 'lth', 128)}. ` : '') +
      `The ONNX file stays dense, as the issue asks: onnxruntime runs it at the dense model's speed (${range(ortSp)} at batch 128), and only gzip shrinks it.`);
  }
  const hm = rows.find((d) => d.id === 'hier_moea');
  if (hm) {
    out.push(`- **HIER-MOEA's LeNet-5** keeps ${(100 * hm.nonzero / hm.params).toFixed(1)}% of its parameters but is no faster (${speed(l, 'hier_moea', 1)} at batch 1, ${speed(l, 'hier_moea', 128)} at batch 128, through the automatic sparse path; below 1 it is slower than dense): ` +
      'most of its multiply-accumulates are in the two convolutions (about 1.9 M of 2.3 M per image), which the sparse Conv2d path takes only at a density of at most 2% (SPARSE_CONV_RULE, measured in docs/benchmarks.md); ' +
      'this pick\'s convolutions are denser, so they run dense, and its unstructured masks remove no channels. Below 1x the issue\'s "never slower than dense" is not met for this model at batch 1. A probe on the idle machine (2026-12-02, 21:25 UTC; LeNet-5 with random weights, batch 1, one thread, CPU time) found the same below-1 ratio for a LeNet-5 with no sparse layer at all (0.73 to 0.94 over 7 runs, the two paths alternating in one process; an A/A run of the same harness gave 1.04 to 1.14), while each path run alone in its own process gave 1.11, 0.90 and 1.07 (the same work varies by about 20% between processes here) and `node --cpu-prof` showed equal native time on both paths: the sparse choices are not the cause, and the ratio is within this measurement\'s spread or an effect of alternating the paths in one process. Not resolved yet; the latency part needs several processes per path.');
  }
  const st = rows.find((d) => d.id === 'structured_50');
  if (st) {
    out.push(`- **Structured magnitude** halves LeNet-300-100's neurons: the shrunk model is ${speed(l, 'structured_50', 128)} faster at batch 128 in topiary and ${speed(l, 'structured_50', 1, 'ort')} / ${speed(l, 'structured_50', 128, 'ort')} in onnxruntime (batch 1 / 128), ` +
      `and ${speed(l, 'structured_50', 1)} at batch 1 in topiary${(() => { const r = lat(l, 'structured_50', 1); return r && r.topiary.deployed > r.topiary.dense ? ' (slower than the dense model)' : ''; })()}. ` +
      'The shrunk model is a GraphModule; an MLP-shaped graph runs its Linear (+ ReLU) layers through the same fused native chain as the dense Sequential (before that, one native call per op made it 0.80x of dense at batch 1). ' +
      'At batch 1 the fixed cost of a call, not the halved multiply-accumulates, sets the time.');
  }
  const dense = lat(l, 'dense', 1);
  if (dense) {
    out.push(`- **The automatic sparse path on a dense model.** The dense row's "deployed" form is the same dense network through the automatic path (which declines for dense weights): ` +
      `${us(dense.topiary.deployed)} against ${us(dense.topiary.dense)} with the path switched off (withDenseInference) at batch 1 (${ratio(dense.topiary.dense, dense.topiary.deployed)}), ` +
      `and ${ratio(lat(l, 'dense', 128)!.topiary.dense, lat(l, 'dense', 128)!.topiary.deployed)} at batch 128` +
      (dense.topiary.deployed > dense.topiary.dense ? ': the automatic path makes a dense model slower at batch 1, where the issue asks for "never slower than dense".' : ': not slower (an earlier version was 0.74x at batch 1; the chain now runs declined layers one by one in the same native call).'));
  }
  const lost = rows.filter((d) => d.sparseRoundTrip.startsWith('equal values'));
  if (lost.length) {
    out.push(`- **The compressed format loses the sign of zero.** Masked weights are often -0.0 (a negative weight times a zero mask); the compressed file gives them back as +0.0 (${lost.length} of ${rows.length} models; the values are equal, so outputs are too). ` +
      'This is the format\'s documented default (src/nn/sparse/format.ts: a -0.0 is a zero; keeping the signs would cost a bit per pruned weight); `exactZeros: true` stores them, for a file bit-identical in every element.');
  }
  if (hm) {
    out.push('- **HIER-MOEA\'s fine-tuned pick.** These runs were made before each pick wrote its own model file, so the row above loads the last fine-tuning checkpoint into LeNet-5 and exports it with the API (encodeOnnx). ' +
      'Since aa42c5f each pick writes finetune/<label>/model.safetensors with its metadata, and `topiary export --from <search run>` exports the knee (test/cli/export-runs.test.ts).');
  }
  if (rows.some((d) => d.id === 'lth')) {
    out.push('- **LTH** kept its result only in its last round\'s folder when these runs were made (so the row exports `--from <run>/round_<n>`); since aa42c5f the run folder holds the last ticket too, and `topiary export --from <run>` takes it.');
  }
  return out;
}
