/**
 * Run folders into the report page's plain data (report/html.ts), and the page written into a run
 * folder (after each train / prune / evo / search command), beside a results document (reproduce),
 * or wherever `topiary report` is told. A folder without a run, a result.json of another schema, a
 * truncated one: one line naming the file, and the other runs are still reported.
 */
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { renderReportHtml, type EpochPoint, type FrontGeneration, type MassLayer, type ReportData, type RunSummary } from '../report/html.js';
import { writeJsonAtomic } from '../train/checkpoint.js';

const MAX_JSON = 64 << 20;
/** Mass trajectories are thinned to at most this many snapshots per layer (the page stays small). */
const MAX_SNAPSHOTS = 60;

type Json = Record<string, unknown>;

function readJson(file: string): unknown {
  let text: string;
  try {
    const s = statSync(file);
    if (!s.isFile()) throw new ConfigError(`${file}: not a regular file`);
    if (s.size > MAX_JSON) throw new ConfigError(`${file}: ${s.size} bytes, more than a result file holds`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON, truncated or damaged (${(e as Error).message})`);
  }
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const fmtPct = (x: number | undefined) => (x === undefined ? '' : `${(100 * x).toFixed(2)}%`);
const fmtInt = (x: number | undefined) => (x === undefined ? '' : Math.round(x).toLocaleString('en-US'));

/** One run folder (holding result.json) as the page's data. Throws a ConfigError naming the file. */
export function readRun(folder: string): RunSummary {
  const file = join(folder, 'result.json');
  if (!existsSync(file)) throw new ConfigError(`${folder}: holds no run (no result.json)`);
  const raw = readJson(file);
  const r = obj(raw);
  const kind = str(r?.kind);
  if (!r || !kind || !obj(r.config)) {
    throw new ConfigError(`${file}: not a topiary result (expected an object with "kind" and "config"; an older or foreign schema)`);
  }
  if (r.history !== undefined && !Array.isArray(r.history)) throw new ConfigError(`${file}: "history" is not a list`);
  const config = r.config as Json;
  const model = str(r.model) ?? str(config.model) ?? str(obj(config.dense)?.model);
  const dataset = str(r.dataset) ?? str(config.dataset) ?? str(obj(config.dense)?.dataset);
  const method = str(r.method) ?? (kind === 'train' ? 'dense' : kind);
  const seed = num(r.seed) ?? num(config.seed);
  const sparsity = num(r.achievedSparsity);
  const accuracy = num(r.testAccuracy) ?? num(r.denseTestAccuracy);
  const metrics: [string, string][] = [];
  const add = (k: string, v: string) => { if (v) metrics.push([k, v]); };
  add('test accuracy', fmtPct(num(r.testAccuracy)));
  add('best val accuracy', fmtPct(num(r.bestValAccuracy)));
  add('sparsity', fmtPct(sparsity));
  add('requested sparsity', fmtPct(num(r.requestedSparsity)));
  add('parameters', fmtInt(num(r.params)));
  add('nonzero parameters', fmtInt(num(r.nonzeroParams)));
  add('nonzero MACs', fmtInt(num(r.nonzeroFlops)));
  add('epochs', Array.isArray(r.history) ? String(r.history.length) : '');
  add('wall seconds', num(r.wallSeconds) !== undefined ? (num(r.wallSeconds) as number).toFixed(1) : '');
  if (r.completed === false) add('status', 'not finished');

  const history: EpochPoint[] | undefined = Array.isArray(r.history) ? (r.history as Json[]).filter((h) => num(h?.epoch) !== undefined && num(h.trainLoss) !== undefined).map((h) => ({
    epoch: h.epoch as number, trainLoss: h.trainLoss as number, trainAccuracy: num(h.trainAccuracy) ?? NaN,
    valAccuracy: num(obj(h.val)?.accuracy) ?? null, valLoss: num(obj(h.val)?.loss) ?? null, lr: num(h.lr),
  })) : undefined;

  let layers: RunSummary['layers'];
  if (Array.isArray(r.sparsityLayers)) {
    layers = (r.sparsityLayers as Json[]).filter((l) => str(l?.name) && num(l.sparsity) !== undefined).map((l) => ({ name: l.name as string, sparsity: l.sparsity as number, params: num(l.total) ?? 0 }));
  } else if (Array.isArray(r.layers) && (r.layers as Json[]).some((l) => num(l?.nonzero) !== undefined && num(l.params) !== undefined && (l.nonzero as number) < (l.params as number))) {
    layers = (r.layers as Json[]).filter((l) => str(l?.name) && num(l.params)).map((l) => ({ name: l.name as string, sparsity: 1 - (num(l.nonzero) ?? 0) / (l.params as number), params: l.params as number }));
  }

  // HIER-MOEA: the fronts of every generation (history.json), the picks' numbers.
  let fronts: FrontGeneration[] | undefined;
  if (kind === 'hier-moea') {
    const hv = obj(r.hypervolume);
    add('hypervolume', num(hv?.final) !== undefined ? (hv!.final as number).toFixed(4) : '');
    add('Pareto solutions', Array.isArray(r.solutions) ? String(r.solutions.length) : '');
    add('dense test accuracy', fmtPct(num(r.denseTestAccuracy)));
    for (const p of Array.isArray(r.picks) ? (r.picks as Json[]) : []) {
      if (num(p.sparsity) !== undefined && num(p.testAccuracy) !== undefined) add(`${str(p.label) ?? 'pick'} (${fmtPct(p.sparsity as number)} sparse)`, fmtPct(p.testAccuracy as number));
    }
    const hfile = join(folder, 'history.json');
    if (existsSync(hfile)) {
      const h = readJson(hfile);
      if (!Array.isArray(h)) throw new ConfigError(`${hfile}: expected a list of generations`);
      fronts = (h as Json[]).filter((g) => Array.isArray(g?.front)).map((g) => ({
        phase: num(g.phase) ?? 1, generation: num(g.generation) ?? 0,
        points: (g.front as unknown[]).filter((p): p is [number, number] => Array.isArray(p) && num(p[0]) !== undefined && num(p[1]) !== undefined && (p[1] as number) > 0)
          .map(([error, kept]) => ({ error, kept })),
      }));
    }
  }

  // EVO-POP: evo.json's accuracies after removal, trajectory.json's masses.
  let masses: MassLayer[] | undefined;
  const evoFile = join(folder, 'evo.json');
  if (existsSync(evoFile)) {
    const e = obj(readJson(evoFile));
    if (!e) throw new ConfigError(`${evoFile}: expected an object`);
    add('dense accuracy', fmtPct(num(e.denseAccuracy)));
    for (const row of Array.isArray(e.rows) ? (e.rows as Json[]) : []) {
      if (row.criterion === 'mass' && num(row.fraction) !== undefined && num(row.accuracy) !== undefined) add(`mass −${(100 * (row.fraction as number)).toFixed(0)}%`, fmtPct(row.accuracy as number));
    }
  }
  const trajFile = join(folder, 'trajectory.json');
  if (existsSync(trajFile)) {
    const t = obj(readJson(trajFile));
    const steps = t?.steps, ms = obj(t?.masses);
    if (!Array.isArray(steps) || !ms) throw new ConfigError(`${trajFile}: expected { steps: [...], masses: { layer: [[...]] } }`);
    const every = Math.max(1, Math.ceil(steps.length / MAX_SNAPSHOTS));
    const keep = steps.map((_, i) => i).filter((i) => i % every === 0 || i === steps.length - 1);
    masses = Object.entries(ms).filter(([, snaps]) => Array.isArray(snaps)).map(([layer, snaps]) => ({
      layer, steps: keep.map((i) => steps[i] as number), masses: keep.map((i) => (snaps as number[][])[i] ?? []),
    }));
  }

  // Deployed size and latency: result.json's `deployed`, or a deployed.json beside it.
  const dep = obj(r.deployed) ?? (existsSync(join(folder, 'deployed.json')) ? obj(readJson(join(folder, 'deployed.json'))) : undefined);
  const deployed: [string, string][] | undefined = dep ? Object.entries(dep).filter(([, v]) => typeof v === 'number' || typeof v === 'string')
    .map(([k, v]) => [k, typeof v === 'number' ? (Number.isInteger(v) ? fmtInt(v) : v.toPrecision(4)) : String(v)]) : undefined;

  const spars = sparsity !== undefined ? ` ${(100 * sparsity).toFixed(1)}%` : '';
  const label = `${method} ${model ?? '?'}/${dataset ?? '?'}${spars}${seed !== undefined ? ` seed ${seed}` : ''}`;
  return {
    id: folder, label, kind, model, dataset, method, seed, command: str(r.command), config, metrics, history, layers,
    sparsity, accuracy: sparsity !== undefined ? accuracy : undefined, fronts, masses, deployed,
  };
}

/** The run folders at or below `path` (a folder holding result.json is a run; checkpoints are skipped). */
export function findRuns(path: string, depth = 6): string[] {
  if (existsSync(join(path, 'result.json'))) return [path];
  if (depth === 0 || !existsSync(path) || !statSync(path).isDirectory()) return [];
  const out: string[] = [];
  for (const e of readdirSync(path, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))) {
    if (e.isDirectory() && e.name !== 'checkpoints' && !e.name.startsWith('.')) out.push(...findRuns(join(path, e.name), depth - 1));
  }
  return out;
}

export interface ReportOutcome { file: string | null; runs: number; bytes: number; problems: string[] }

/**
 * Read the runs at or below each path and write one page. Problems (no run, a bad file) are
 * collected, shown on the page and returned; with no run at all nothing is written.
 */
export function writeReport(paths: string[], file: string, o: { title?: string } = {}): ReportOutcome {
  const problems: string[] = [];
  const runs: RunSummary[] = [];
  for (const p of paths) {
    const found = findRuns(p);
    if (!found.length) { problems.push(`${p}: holds no run (no result.json in it or below it)`); continue; }
    for (const f of found) {
      try {
        runs.push(readRun(f));
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        problems.push(e.message);
      }
    }
  }
  if (!runs.length) return { file: null, runs: 0, bytes: 0, problems };
  // Labels are legends: two runs with one label get their folder names added.
  const seen = new Map<string, number>();
  for (const r of runs) seen.set(r.label, (seen.get(r.label) ?? 0) + 1);
  for (const r of runs) if ((seen.get(r.label) ?? 0) > 1) r.label = `${r.label} (${relative(process.cwd(), r.id) || basename(r.id)})`;
  const title = o.title ?? (runs.length === 1 ? `topiary: ${runs[0].label}` : `topiary: ${runs.length} runs`);
  const data: ReportData = { title, runs, problems, generated: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
  const html = renderReportHtml(data);
  writeFileAtomic(file, html);
  return { file, runs: runs.length, bytes: Buffer.byteLength(html), problems };
}

function writeFileAtomic(file: string, text: string): void {
  if (!existsSync(dirname(file))) throw new ConfigError(`${file}: the folder ${dirname(file)} does not exist`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Shell-quoted command line of this process, as `topiary ...`. */
export function commandLine(argv: string[] = process.argv.slice(2)): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['topiary', ...argv.map(q)].join(' ');
}

/**
 * After a command: record its command line in the run's result.json and write report.html beside
 * it. The run is done whatever happens here: a failure is one line on stderr, never an exit status.
 */
export function writeRunPage(folder: string, command: string = commandLine()): string | null {
  try {
    const file = join(folder, 'result.json');
    if (existsSync(file)) {
      const r = obj(readJson(file));
      if (r && r.command !== command) writeJsonAtomic(file, { ...r, command });
    }
    return writeReport([folder], join(folder, 'report.html')).file;
  } catch (e) {
    process.stderr.write(`topiary: the report page was not written: ${(e as Error).message}\n`);
    return null;
  }
}

/**
 * After `topiary reproduce`: the page of every run of the reproduction beside its results
 * document (docs/results/<name>.md -> <name>.html). Like writeRunPage, never fails the command.
 */
export function writeResultsPage(runsDir: string, doc: string, title = `topiary: ${basename(doc).replace(/\.md$/, '')}`): string | null {
  try {
    const r = writeReport([runsDir], doc.replace(/\.md$/, '') + '.html', { title });
    for (const p of r.problems) process.stderr.write(`topiary: report page: ${p}\n`);
    return r.file;
  } catch (e) {
    process.stderr.write(`topiary: the report page was not written: ${(e as Error).message}\n`);
    return null;
  }
}
