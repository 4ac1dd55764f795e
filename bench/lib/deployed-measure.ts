/**
 * bench/deployed.ts's deploy, latency and doc parts: each method's trained run becomes a deployed
 * model (compressed sparse safetensors, `topiary export` ONNX, the shrunk or physically smaller
 * model where there is one); its test accuracy in topiary and in onnxruntime-node; the latency of the
 * deployed form against the dense model, alternating, one thread.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { setNumThreads, torchVersion } from '../../src/core/runtime.js';
import { loadDataset } from '../../src/data/dataset.js';
import { DataLoader } from '../../src/data/loader.js';
import { encodeOnnx } from '../../src/graph/onnx-export.js';
import { loadGraphModule } from '../../src/graph/run.js';
import { createModel } from '../../src/models/registry.js';
import type { Module } from '../../src/nn/module.js';
import { gzipSize, loadSparseSafetensors, saveSparseSafetensors, withDenseInference } from '../../src/nn/sparse/index.js';
import { loadPruned } from '../../src/prune/evo-pop/physical.js';
import { loadWeights } from '../../src/prune/methods/stage.js';
import { loadSafetensors, noGrad, rand, saveSafetensors, tidy, type Tensor } from '../../src/tensor/index.js';
import { dispose } from '../../src/tensor/scope.js';
import { REPO_ROOT } from './common.js';
import { commandLines, fmtKiB, latestCheckpoint, ratio, roundTrip, type Method } from './deployed-methods.js';

const SHAPE = [1, 28, 28];
const README_BEGIN = '<!-- deployed-table:begin (bench/deployed.ts doc) -->';
const README_END = '<!-- deployed-table:end -->';

interface Files { dense: number; sparse: number; sparseGzip: number; onnx: number; onnxGzip: number; shrunk?: number }
export interface Deployed {
  id: string; label: string; model: string; budget: string; short: string; commands: string[]; recipes: Record<string, unknown>[]; date: string;
  form: string; params: number; nonzero: number; denseParams: number;
  resultTestAccuracy: number; topiaryAccuracy: number; ortAccuracy: number; disagree: number; maxAbsDiff: number;
  sparseRoundTrip: string; files: Files; exported: string; notes: string[]; reproduced?: string;
}
export interface Latency { id: string; batch: number; topiary: { dense: number; deployed: number }; ort: { dense: number; deployed: number } }

interface Opts { root: string; dataDir: string; argv: string[] }

const readJson = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
const numParams = (m: Module) => m.namedParameters().reduce((s, [, p]) => s + p.numel, 0);
const nonzeroParams = (m: Module) => tidy(() => m.namedParameters().reduce((s, [, p]) => s + p.ne(0).sum().item(), 0));

/** Where a method's trained model is, and how to load its deployed form and its dense reference. */
interface Source {
  /** The run folder (or file) `topiary export --from` gets. */
  exportFrom: string;
  /** The trained model as a full-size module (masked for the unstructured methods). */
  full(): Module;
  /** The model whose state goes into the compressed file, when not `full` (EVO-POP: the pruned one). */
  sparseOf?(): Module;
  /** A dense model of the full size (the latency reference). */
  dense(): Module;
  /** The deployed form; `sparseFile` is the compressed file the sparse form loads from. */
  deployed(sparseFile: string): Module;
  /** The shrunk or physically smaller model's files (bytes), if any. */
  shrunkBytes?: number;
  testAccuracy: number;
  notes: string[];
}

function source(m: Method, root: string): Source {
  const last = m.steps[m.steps.length - 1];
  const dir = join(root, last.dir);
  const spec = { inputShape: SHAPE, numClasses: 10 };
  const fromFile = (model: string, file: string) => () => { const x = createModel(model, spec); loadWeights(x, file); return x; };
  const sparseLoad = (model: string) => (f: string) => {
    const x = createModel(model, spec);
    const { tensors } = loadSparseSafetensors(f);
    try { x.loadStateDict(tensors); } finally { dispose(tensors); }
    return x;
  };
  if (m.deploy === 'physical') {
    const pdir = join(dir, 'pruned_mass_0.5');
    const evo = readJson(join(dir, 'evo.json')) as { rows: { criterion: string; fraction: number; accuracy: number }[] };
    const row = evo.rows.find((r) => r.criterion === 'mass' && r.fraction === 0.5)!;
    const files = ['model.safetensors', 'architecture.json'].reduce((s, f) => s + statSync(join(pdir, f)).size, 0);
    const trained = () => {
      // The trained network before removal, as a plain MLP: the run's population layers ('1.unit.weight',
      // '1.mass', ...) mapped in order onto the MLP's Linear layers (the masses left out).
      const x = createModel('mlp', spec);
      const { tensors } = loadSafetensors(join(dir, 'model.safetensors'));
      try {
        const from = Object.keys(tensors).filter((k) => !k.endsWith('.mass')).sort(byLayer);
        const to = Object.keys(x.stateDict()).sort(byLayer);
        if (from.length !== to.length) throw new Error(`${dir}/model.safetensors: ${from.length} tensors for the MLP's ${to.length}`);
        x.loadStateDict(Object.fromEntries(to.map((k, i) => [k, tensors[from[i]]])));
      } finally { dispose(tensors); }
      return x;
    };
    return {
      exportFrom: pdir, full: trained, sparseOf: () => loadPruned(pdir).model, dense: trained,
      deployed: () => loadPruned(pdir).model, shrunkBytes: files, testAccuracy: row.accuracy,
      notes: ["dense file and latency reference: the run's trained 784-512-256-10 MLP before removal (run folder model.safetensors, masses left out); the compressed file holds the pruned model"],
    };
  }
  if (m.id === 'hier_moea') {
    const src0notes: string[] = [];
    // The best pick with at least 90% of the weights pruned, else the knee; a pick that names the same
    // solution as an earlier label was fine-tuned once, in that label's folder.
    const res = readJson(join(dir, 'result.json')) as { picks?: { label: string; solution: number }[] };
    const want = res.picks?.find((p) => p.label === 'sparsity-0.9') ?? res.picks?.find((p) => p.label === 'knee');
    if (!want) throw new Error(`${dir}/result.json: no picks`);
    const fdir = readdirSync(join(dir, 'finetune')).map((l) => join(dir, 'finetune', l))
      .find((f) => existsSync(join(f, 'result.json')) && (readJson(join(f, 'result.json')) as { solution: number }).solution === want.solution);
    if (!fdir) throw new Error(`${dir}/finetune: no folder holds solution ${want.solution}`);
    const ck = latestCheckpoint(join(fdir, 'checkpoints'));
    const pick = readJson(join(fdir, 'result.json')) as { testAccuracy: number };
    if (want.label !== 'sparsity-0.9') src0notes.push('no solution of the final set had 90% of the weights pruned: the knee is deployed');
    return {
      exportFrom: ck, full: fromFile('lenet5', ck), dense: fromFile('lenet5', ck), deployed: sparseLoad('lenet5'), testAccuracy: pick.testAccuracy,
      notes: [...src0notes, `the fine-tuned pick is kept only as its last training checkpoint (${ck.slice(root.length + 1)}): topiary search writes no model file for it`],
    };
  }
  const res = readJson(join(dir, 'result.json'));
  let file = join(dir, 'model.safetensors'), exportFrom = dir;
  const notes: string[] = [];
  if (m.id === 'lth') {
    // LTH keeps each round in its own folder; the last round's model is the result.
    const rounds = (res.record as { rounds: number }).rounds;
    exportFrom = join(dir, `round_${rounds}`);
    file = join(exportFrom, 'model.safetensors');
    notes.push(`the model of the last round (round_${rounds}/): the run folder itself holds none, so \`topiary export --from\` gets the round's folder`);
  }
  if (m.deploy === 'shrunk') {
    const prefix = join(dir, 'model.shrunk');
    const dense = join(root, m.steps.length > 1 ? m.steps[0].dir : dirOfFrom(last.args, root), 'model.safetensors');
    return {
      exportFrom: dir, full: fromFile(m.model, file), dense: fromFile(m.model, dense), deployed: () => loadGraphModule(prefix),
      shrunkBytes: statSync(`${prefix}.safetensors`).size + statSync(`${prefix}.graph.json`).size,
      testAccuracy: res.testAccuracy as number, notes: ['dense reference: the dense run it was pruned from'],
    };
  }
  return { exportFrom, full: fromFile(m.model, file), dense: fromFile(m.model, file), deployed: sparseLoad(m.model), testAccuracy: res.testAccuracy as number, notes };
}

const byLayer = (a: string, b: string) => parseInt(a, 10) - parseInt(b, 10) || (a < b ? -1 : a > b ? 1 : 0);

function dirOfFrom(args: string[], root: string): string {
  const i = args.indexOf('--from');
  return args[i + 1].replace('{root}/', '').replace(`${root}/`, '');
}

async function testSet(dataDir: string) {
  const ds = await loadDataset('mnist', { split: 'test', dataDir });
  return ds;
}

/** Predictions of a module and of an onnxruntime session over the test set; accuracy of each, disagreements, max abs logit difference. */
async function accuracies(mod: Module, onnx: Uint8Array, dataDir: string) {
  const ds = await testSet(dataDir);
  const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  let n = 0, okT = 0, okO = 0, disagree = 0, maxAbsDiff = 0;
  mod.eval();
  try {
    for (const b of new DataLoader(ds, { batchSize: 500 }).epoch(0)) {
      const x = b.x, y = b.y;
      const logits = noGrad(() => mod.call(x));
      const lt = logits.toTypedArray() as Float32Array;
      const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) };
      const lo = (await session.run(feeds))[session.outputNames[0]].data as Float32Array;
      const labels = y.toTypedArray() as BigInt64Array;
      const bs = labels.length, k = lt.length / bs;
      for (let i = 0; i < bs; i++) {
        let at = 0, ao = 0;
        for (let j = 0; j < k; j++) {
          if (lt[i * k + j] > lt[i * k + at]) at = j;
          if (lo[i * k + j] > lo[i * k + ao]) ao = j;
          maxAbsDiff = Math.max(maxAbsDiff, Math.abs(lt[i * k + j] - lo[i * k + j]));
        }
        const l = Number(labels[i]);
        okT += +(at === l); okO += +(ao === l); disagree += +(at !== ao); n++;
      }
      for (const t of [x, y, logits] as Tensor[]) t.dispose();
    }
  } finally {
    await session.release();
    ds.dispose?.();
  }
  return { topiary: okT / n, ort: okO / n, disagree, maxAbsDiff, n };
}

async function deployOne(m: Method, o: Opts): Promise<Deployed> {
  const src = source(m, o.root);
  const out = join(o.root, 'deployed', m.id);
  mkdirSync(out, { recursive: true });
  const full = src.full();
  const sd = full.stateDict();
  const denseFile = join(out, 'dense.safetensors'), sparseFile = join(out, 'sparse.safetensors'), onnxFile = join(out, 'model.onnx');
  saveSafetensors(denseFile, sd);
  const small = src.sparseOf?.();
  const ssd = small ? small.stateDict() : sd;
  saveSparseSafetensors(sparseFile, ssd);
  const back = loadSparseSafetensors(sparseFile);
  const bitIdentical = roundTrip(ssd, back.tensors);
  dispose(back.tensors);
  small?.dispose();
  // The real CLI: it exports the smallest model the run holds, and says which.
  const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' };
  const ex = spawnSync('nice', ['-n', '15', process.execPath, join(REPO_ROOT, 'bin/topiary.js'), 'export', '--from', src.exportFrom, '--out', onnxFile, '--json'], { cwd: REPO_ROOT, env, encoding: 'utf8' });
  const notes = [...src.notes];
  let exported: string;
  if (ex.status === 0) {
    const j = JSON.parse(ex.stdout) as { picked: string; params: number };
    exported = `${j.picked}, ${j.params.toLocaleString('en-US')} parameters`;
  } else {
    const line = ex.stderr.trim().split('\n').find((l) => l.startsWith('topiary:')) ?? ex.stderr.trim();
    notes.push(`topiary export --from ${src.exportFrom} failed: ${line}; exported with the API (encodeOnnx of the loaded model) instead`);
    writeFileSync(onnxFile, encodeOnnx(full, { inputShape: SHAPE }));
    exported = 'API fallback';
  }
  const deployed = src.deployed(sparseFile);
  const acc = await accuracies(deployed, readFileSync(onnxFile), o.dataDir);
  const d: Deployed = {
    id: m.id, label: m.label, model: m.model, budget: m.budget, short: m.short, commands: commandLines(m, o.root),
    recipes: m.steps.flatMap((s) => (s.recipe ? [{ file: `recipes/${s.recipe.name}.yaml`, ...s.recipe.body }] : [])), date: new Date().toISOString(),
    form: m.deploy === 'sparse' ? 'sparse path' : m.deploy === 'shrunk' ? 'shrunk (GraphModule)' : 'physically smaller Sequential',
    params: numParams(deployed), nonzero: nonzeroParams(deployed), denseParams: numParams(full),
    resultTestAccuracy: src.testAccuracy, topiaryAccuracy: acc.topiary, ortAccuracy: acc.ort, disagree: acc.disagree, maxAbsDiff: acc.maxAbsDiff,
    sparseRoundTrip: bitIdentical,
    files: { dense: statSync(denseFile).size, sparse: statSync(sparseFile).size, sparseGzip: gzipSize(sparseFile), onnx: statSync(onnxFile).size, onnxGzip: gzipSize(onnxFile), ...(src.shrunkBytes ? { shrunk: src.shrunkBytes } : {}) },
    exported, notes, reproduced: m.reproduced,
  };
  if (Math.abs(d.topiaryAccuracy - d.resultTestAccuracy) > 1e-4) notes.push(`the deployed form's test accuracy ${(100 * d.topiaryAccuracy).toFixed(2)}% differs from the run's ${(100 * d.resultTestAccuracy).toFixed(2)}%`);
  writeFileSync(join(out, 'deployed.json'), JSON.stringify(d, null, 2) + '\n');
  deployed.dispose(); full.dispose(); dispose(sd);
  process.stderr.write(`[deployed] ${m.id}: topiary ${(100 * d.topiaryAccuracy).toFixed(2)}%, onnxruntime ${(100 * d.ortAccuracy).toFixed(2)}% (${d.disagree} disagree), run ${(100 * d.resultTestAccuracy).toFixed(2)}%; ` +
    `dense ${fmtKiB(d.files.dense)}, sparse ${fmtKiB(d.files.sparse)}, onnx ${fmtKiB(d.files.onnx)} / gzip ${fmtKiB(d.files.onnxGzip)}${d.files.shrunk ? `, shrunk ${fmtKiB(d.files.shrunk)}` : ''}\n`);
  return d;
}

/** CPU microseconds per call of each function, median over rounds; the functions alternate within each round (order reversed every other round). */
async function alternate(fns: Record<string, () => void | Promise<void>>, iters: number, rounds: number): Promise<Record<string, number>> {
  for (const f of Object.values(fns)) for (let i = 0; i < Math.max(3, iters >> 3); i++) await f();
  const acc: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? Object.entries(fns).reverse() : Object.entries(fns);
    for (const [k, f] of order) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < iters; i++) await f();
      const c = process.cpuUsage(c0);
      (acc[k] ??= []).push((c.user + c.system) / iters);
    }
  }
  const med = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
  return Object.fromEntries(Object.entries(acc).map(([k, v]) => [k, med(v)]));
}

async function latencyOne(m: Method, o: Opts, reps: number): Promise<Latency[]> {
  const src = source(m, o.root);
  const sparseFile = join(o.root, 'deployed', m.id, 'sparse.safetensors');
  const dense = src.dense().eval(), deployed = src.deployed(sparseFile).eval();
  // For the unstructured methods the dense reference is the same weights through the dense kernels.
  const denseFwd = m.deploy === 'sparse' ? (x: Tensor) => withDenseInference(() => dense.call(x)) : (x: Tensor) => dense.call(x);
  const sess = async (mod: Module) => ort.InferenceSession.create(withDenseInference(() => encodeOnnx(mod, { inputShape: SHAPE })), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  const sDense = await sess(dense), sDep = await sess(deployed);
  const out: Latency[] = [];
  for (const batch of [1, 128]) {
    const x = rand([batch, ...SHAPE]);
    const feeds = (s: ort.InferenceSession) => ({ [s.inputNames[0]]: new ort.Tensor('float32', x.toTypedArray() as Float32Array, [batch, ...SHAPE]) });
    const fd = feeds(sDense), fp = feeds(sDep);
    // About the same CPU time per round for each model (LeNet-5's convolutions cost some 20x LeNet-300-100's forward).
    const iters = m.model === 'lenet5' ? (batch === 1 ? 100 : 3) : batch === 1 ? 500 : 30;
    const t = await alternate({
      dense: () => tidy(() => noGrad(() => denseFwd(x))).dispose(),
      deployed: () => tidy(() => noGrad(() => deployed.call(x))).dispose(),
      ortDense: async () => { await sDense.run(fd); },
      ortDeployed: async () => { await sDep.run(fp); },
    }, iters, reps);
    out.push({ id: m.id, batch, topiary: { dense: t.dense, deployed: t.deployed }, ort: { dense: t.ortDense, deployed: t.ortDeployed } });
    process.stderr.write(`[deployed] ${m.id} batch ${batch}: topiary ${t.dense.toFixed(1)} / ${t.deployed.toFixed(1)} µs (${ratio(t.dense, t.deployed)}), onnxruntime ${t.ortDense.toFixed(1)} / ${t.ortDeployed.toFixed(1)} µs (${ratio(t.ortDense, t.ortDeployed)})\n`);
    x.dispose();
  }
  await sDense.release(); await sDep.release();
  dense.dispose(); deployed.dispose();
  return out;
}

function available(ms: Method[], root: string, only?: string[]): Method[] {
  return ms.filter((m) => (!only || only.includes(m.id)) && (m.id !== 'pmp_98_full' || only?.includes(m.id) || existsSync(join(root, m.steps[0].dir, 'result.json')))
    && m.steps.every((s) => existsSync(join(root, s.dir, s.done))));
}

export async function deployPart(part: string, ms: Method[], o: Opts): Promise<void> {
  const flag = (name: string) => { const i = o.argv.indexOf(`--${name}`); return i >= 0 ? o.argv[i + 1] : undefined; };
  const only = flag('only')?.split(',');
  const dir = join(o.root, 'deployed');
  mkdirSync(dir, { recursive: true });
  if (part === 'deploy') {
    for (const m of available(ms, o.root, only)) {
      try { await deployOne(m, o); } catch (e) { process.stderr.write(`[deployed] ${m.id}: deploy failed: ${(e as Error).stack}\n`); process.exitCode = 1; }
    }
    return;
  }
  if (part === 'latency') {
    if (process.env.OPENBLAS_NUM_THREADS !== '1') {
      // One thread everywhere, OpenBLAS included: its pool must be pinned before the addon loads.
      const r = spawnSync(process.execPath, process.execArgv.concat(process.argv.slice(1)), { stdio: 'inherit', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } });
      process.exitCode = r.status ?? 1;
      return;
    }
    setNumThreads(1);
    const reps = Number(flag('reps') ?? '9');
    const file = join(dir, 'latency.json');
    const prevFile = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { rows: Latency[]; command: string; commands?: string[] }) : null;
    const prev = prevFile?.rows ?? [];
    const load0 = loadavg()[0];
    const rows: Latency[] = prev.filter((r) => only && !only.includes(r.id));
    const commands = [...new Set([...(only && prevFile ? prevFile.commands ?? [prevFile.command] : []),
      `flock -x /tmp/bench.lock node --import tsx bench/deployed.ts latency --reps ${reps}${only ? ` --only ${only.join(',')}` : ''}`])];
    // Written after every method, so that a run cut short keeps what it measured.
    const save = () => writeFileSync(file, JSON.stringify({
      date: new Date().toISOString(), reps, load: [load0, loadavg()[0]], cpu: cpus()[0]?.model, cores: cpus().length, libtorch: torchVersion(), node: process.version,
      command: commands.join('; then '), commands, rows,
      // The 1-minute load average at the start and end of each invocation (the earlier ones kept when --only adds rows).
      loads: [...(only && prevFile ? (prevFile as { loads?: number[][] }).loads ?? [] : []), [load0, loadavg()[0]]],
    }, null, 2) + '\n');
    for (const m of available(ms, o.root, only).filter((x) => existsSync(join(dir, x.id, 'deployed.json')))) {
      rows.push(...await latencyOne(m, o, reps));
      save();
    }
    return;
  }
  if (part === 'doc') {
    const { renderDoc, renderReadmeTable } = await import('./deployed-doc.js');
    // Labels and budgets as the methods name them now (a record keeps those of its deploy run).
    const deployedRows = ms.filter((m) => existsSync(join(dir, m.id, 'deployed.json')))
      .map((m) => ({ ...(readJson(join(dir, m.id, 'deployed.json')) as unknown as Deployed), label: m.label, short: m.short, budget: m.budget }));
    const lat = existsSync(join(dir, 'latency.json')) ? readJson(join(dir, 'latency.json')) : null;
    const doc = renderDoc(deployedRows, lat as never, ms);
    writeFileSync(join(REPO_ROOT, 'docs/results/deployed.md'), doc);
    const table = renderReadmeTable(deployedRows, lat as never);
    const readme = join(REPO_ROOT, 'README.md');
    const r = readFileSync(readme, 'utf8');
    if (r.includes(README_BEGIN)) {
      writeFileSync(readme, r.slice(0, r.indexOf(README_BEGIN)) + `${README_BEGIN}\n${table}\n${README_END}` + r.slice(r.indexOf(README_END) + README_END.length));
      process.stderr.write('[deployed] README table updated\n');
    } else {
      process.stdout.write(`${README_BEGIN}\n${table}\n${README_END}\n`);
    }
    return;
  }
}
