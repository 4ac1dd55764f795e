/**
 * `topiary export --from <run folder or model file> --format onnx --out model.onnx`: the model a
 * run holds, as ONNX. A run folder may hold several models: the trained (or masked) one,
 * model.safetensors; the physically smaller one of a structured prune, model.shrunk.graph.json +
 * model.shrunk.safetensors; EVO-POP's physically pruned Sequential, architecture.json +
 * model.safetensors. The smallest is exported unless --pick says otherwise, and the command says which.
 * A `topiary search` run exports its fine-tuned knee (finetune/knee/), and says so.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError, SerializationError } from '../core/errors.js';
import { getDatasetSpec } from '../data/sources.js';
import { checkOutPath, exportOnnx } from '../graph/onnx-export.js';
import { loadGraphModule } from '../graph/run.js';
import { importOnnx, isOnnxFile, ONNX_MODEL } from '../graph/onnx-import.js';
import { createModel } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import { loadPruned } from '../prune/evo-pop/physical.js';
import { loadSafetensors } from '../tensor/safetensors.js';
import { dispose } from '../tensor/scope.js';
import { runCommand } from './common.js';

export type Pick = 'smallest' | 'dense' | 'shrunk';
const PICKS: Pick[] = ['smallest', 'dense', 'shrunk'];

/** One model a run folder (or file) holds. */
export interface Candidate {
  /** 'dense' (model.safetensors: trained, or masked by a prune run), 'shrunk', 'physical' (EVO-POP). */
  kind: 'dense' | 'shrunk' | 'physical';
  /** How the command names it: 'masked' for the dense model of a prune run. */
  label: string;
  /** The file its weights are in. */
  file: string;
  load(): Module;
  params: number;
}

interface RunInfo { model?: string; dataset?: string; widths?: number[]; onnx?: string }

function readJson(f: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new SerializationError(`${f}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

/** Model, dataset and widths: from result.json or run.json of the folder or a parent (EVO-POP's model folders sit below the run). */
function runInfo(dir: string): RunInfo {
  let d = resolve(dir);
  for (let up = 0; up < 4; up++) {
    for (const name of ['result.json', 'run.json']) {
      const f = join(d, name);
      if (!existsSync(f)) continue;
      const j = readJson(f);
      const c = (j.config ?? (j.train as Record<string, unknown> | undefined) ?? j) as Record<string, unknown>;
      const model = typeof c.model === 'string' ? c.model : typeof j.model === 'string' ? j.model : undefined;
      const dataset = typeof c.dataset === 'string' ? c.dataset : typeof j.dataset === 'string' ? j.dataset : undefined;
      const onnx = (j.pruneOptions as { from?: unknown } | undefined)?.from ?? (j.kind === 'hier-moea' ? j.from : undefined); // a run pruning (or searching) an imported ONNX model
      if (model || dataset) return { model, dataset, widths: Array.isArray(c.widths) ? (c.widths as number[]) : undefined, ...(isOnnxFile(onnx) ? { onnx } : {}) };
    }
    const parent = dirname(d);
    if (parent === d) break;
    d = parent;
  }
  return {};
}

/** Model, dataset and widths recorded in a model.safetensors file's metadata. */
function fileInfo(file: string): RunInfo {
  const { tensors, metadata } = loadSafetensors(file);
  dispose(tensors);
  let widths: number[] | undefined;
  try { widths = metadata.config ? (JSON.parse(metadata.config) as { widths?: number[] }).widths : undefined; } catch { /* not JSON: no widths */ }
  return { model: metadata.model, dataset: metadata.dataset, widths };
}

const countParams = (m: Module) => m.namedParameters().reduce((s, [, p]) => s + p.numel, 0);

function registryModel(info: RunInfo, file: string, inputShape: number[]): Candidate {
  if (!info.model) throw new ConfigError(`from: no model name for ${file} (no result.json/run.json beside it and none in its metadata)`, [{ path: 'from', message: 'no model name' }]);
  const numClasses = info.dataset ? getDatasetSpec(info.dataset).numClasses : 10;
  const load = () => {
    const m = info.model === ONNX_MODEL && info.onnx ? importOnnx(info.onnx, { inputShape }) : createModel(info.model!, { inputShape, numClasses, widths: info.widths });
    const { tensors } = loadSafetensors(file);
    try {
      m.loadStateDict(tensors);
    } catch (e) {
      m.dispose();
      throw new SerializationError(`${file}: does not fit ${info.model} (${(e as Error).message})`, { cause: e });
    } finally {
      dispose(tensors);
    }
    return m;
  };
  const { tensors } = loadSafetensors(file);
  const params = Object.entries(tensors).filter(([k]) => !/running_(mean|var)$|num_batches_tracked$/.test(k)).reduce((s, [, t]) => s + t.numel, 0);
  dispose(tensors);
  const label = existsSync(join(dirname(file), 'masks.safetensors')) ? 'masked' : 'dense';
  return { kind: 'dense', label, file, load, params };
}

const holdsModel = (d: string) => ['model.safetensors', 'model.shrunk.graph.json', 'architecture.json'].some((f) => existsSync(join(d, f)));

/**
 * A `topiary search` run folder holds its models in finetune/<label>/: the knee (the search's chosen
 * solution) is taken; without one, a single pick, else one line listing them.
 */
function searchPick(from: string): { dir: string; label: string; others: string[] } | null {
  const ft = join(from, 'finetune');
  if (holdsModel(from) || !existsSync(ft) || !statSync(ft).isDirectory()) return null;
  const labels = readdirSync(ft).filter((l) => holdsModel(join(ft, l))).sort();
  const label = labels.includes('knee') ? 'knee' : labels.length === 1 ? labels[0] : null;
  if (!label) {
    throw new ConfigError(labels.length ? `from: '${from}' is a search run with several fine-tuned picks and no knee; give --from ${join(ft, '<label>')} with one of: ${labels.join(', ')}`
      : `from: '${from}' is a search run whose fine-tuned picks saved no model (finetune/*/model.safetensors; rerun the search with this version to write them)`, [{ path: 'from', message: 'which pick' }]);
  }
  return { dir: join(ft, label), label, others: labels.filter((l) => l !== label) };
}

/** Every model `from` holds, and the input shape of one example. */
export function candidates(from: string, inputShapeFlag?: number[]): { list: Candidate[]; inputShape: number[]; model: string; searchPick?: { label: string; others: string[] } } {
  if (!existsSync(from)) throw new ConfigError(`from: '${from}' does not exist`, [{ path: 'from', message: 'not found' }]);
  const isDir = statSync(from).isDirectory();
  const sp = isDir ? searchPick(from) : null;
  if (sp) return { ...candidates(sp.dir, inputShapeFlag), searchPick: { label: sp.label, others: sp.others } };
  const dir = isDir ? from : dirname(from);
  let info = runInfo(dir);
  const list: Candidate[] = [];
  const shapeFor = (i: RunInfo) => inputShapeFlag ?? (i.dataset ? [...getDatasetSpec(i.dataset).inputShape] : undefined);
  const graphPrefix = isDir ? join(from, 'model.shrunk') : from.endsWith('.graph.json') ? from.slice(0, -'.graph.json'.length) : null;
  if (!isDir && from.endsWith('.safetensors')) {
    const fi = fileInfo(from); // the file's own record first, then its folder's
    info = { model: fi.model ?? info.model, dataset: fi.dataset ?? info.dataset, widths: fi.widths ?? info.widths };
  }
  if (graphPrefix && existsSync(`${graphPrefix}.graph.json`)) {
    const weights = `${graphPrefix}.safetensors`;
    if (!existsSync(weights)) throw new ConfigError(`from: '${graphPrefix}.graph.json' has no ${basename(weights)} beside it`, [{ path: 'from', message: 'no weights' }]);
    const gm = () => loadGraphModule(graphPrefix);
    const m = gm();
    const params = countParams(m);
    const shape = m.graph.inputs[0].shape.slice(1) as number[];
    m.dispose();
    list.push({ kind: 'shrunk', label: 'shrunk', file: weights, load: gm, params });
    inputShapeFlag ??= shape;
  }
  if (isDir && existsSync(join(from, 'architecture.json'))) {
    const load = () => loadPruned(from).model;
    const m = load();
    list.push({ kind: 'physical', label: 'physically pruned', file: join(from, 'model.safetensors'), load, params: countParams(m) });
    m.dispose();
  } else {
    const file = isDir ? join(from, 'model.safetensors') : from.endsWith('.safetensors') ? from : null;
    if (file && existsSync(file)) {
      if (isDir) { const fi = fileInfo(file); info = { ...info, model: fi.model ?? info.model, dataset: fi.dataset ?? info.dataset, widths: fi.widths ?? info.widths }; }
      const shape = shapeFor(info);
      if (!shape) throw new ConfigError(`from: no dataset recorded for ${file}; give --input-shape`, [{ path: 'input-shape', message: 'unknown' }]);
      list.push(registryModel(info, file, shape));
    }
  }
  if (list.length === 0) throw new ConfigError(`from: '${from}' holds no model (model.safetensors, model.shrunk.graph.json or architecture.json)`, [{ path: 'from', message: 'no model' }]);
  const inputShape = shapeFor(info);
  if (!inputShape) throw new ConfigError(`from: no dataset recorded for '${from}'; give --input-shape`, [{ path: 'input-shape', message: 'unknown' }]);
  return { list, inputShape, model: info.model ?? 'model' };
}

export function choose(list: Candidate[], pick: Pick): Candidate {
  if (pick === 'smallest') return list.reduce((a, b) => (b.params < a.params ? b : a));
  const want = pick === 'dense' ? ['dense'] : ['shrunk', 'physical'];
  const c = list.find((x) => want.includes(x.kind));
  if (!c) throw new ConfigError(`--pick ${pick}: the run holds no ${pick} model (it holds: ${list.map((x) => x.kind).join(', ')})`, [{ path: 'pick', message: 'absent' }]);
  return c;
}

export interface ExportSummary {
  from: string; model: string; picked: string; file: string; params: number; others: { kind: string; params: number }[]; out: string; bytes: number; opset: number; inputShape: number[];
  /** A search run folder: the fine-tuned pick exported (finetune/<label>) and the run's other picks. */
  searchPick?: { label: string; others: string[] };
}

export function exportRun(o: { from: string; out: string; format?: string; opset?: number; pick?: Pick; inputShape?: number[] }): ExportSummary {
  if ((o.format ?? 'onnx') !== 'onnx') throw new ConfigError(`--format ${o.format}: only onnx is written`, [{ path: 'format', message: 'unknown' }]);
  checkOutPath(o.out); // before loading anything: a missing folder is one clear error, nothing written
  const { list, inputShape, model, searchPick: sp } = candidates(o.from, o.inputShape);
  const c = choose(list, o.pick ?? 'smallest');
  const m = c.load();
  try {
    m.eval();
    const r = exportOnnx(m, { inputShape, opset: o.opset ?? 17, out: o.out, docString: `topiary export of ${model} (${c.label}) from ${o.from}` });
    return {
      from: o.from, model, picked: c.label, file: c.file, params: c.params, others: list.filter((x) => x !== c).map((x) => ({ kind: x.label, params: x.params })),
      out: r.path, bytes: r.bytes, opset: r.opset, inputShape, ...(sp ? { searchPick: sp } : {}),
    };
  } finally {
    m.dispose();
  }
}

const intList = (flag: string) => (v: string): number[] => {
  const xs = v.split(',').map((s) => Number(s.trim()));
  // InvalidArgumentError: commander's one line; any other error thrown from an argument parser escapes as a crash.
  if (!xs.length || !xs.every((x) => Number.isInteger(x) && x > 0)) throw new InvalidArgumentError(`expected positive integers like 1,28,28, got '${v}'`);
  return xs;
};

export function exportCommand(): Command {
  return new Command('export')
    .description('write a run\'s model (the smallest it holds: shrunk over masked or dense) or a model file as ONNX')
    .requiredOption('--from <path>', 'a run folder, a model.safetensors file, or a <prefix>.graph.json')
    .requiredOption('--out <file>', 'the ONNX file to write (its folder must exist)')
    .addOption(new Option('--format <format>', 'output format').choices(['onnx']).default('onnx'))
    .option('--opset <n>', 'ONNX opset (13 to 21)', (v: string) => Number(v), 17)
    .addOption(new Option('--pick <which>', 'which model of the run').choices(PICKS).default('smallest'))
    .option('--input-shape <c,h,w>', 'shape of one example when the run records no dataset', intList('--input-shape'))
    .option('--json', 'print the summary as JSON on stdout')
    .option('--verbose', 'show stacks on errors')
    .action(async (opts: Record<string, unknown>) => {
      await runCommand(!!opts.verbose, async () => {
        const r = exportRun({ from: String(opts.from), out: String(opts.out), format: opts.format as string, opset: opts.opset as number, pick: opts.pick as Pick, inputShape: opts.inputShape as number[] | undefined });
        if (opts.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return; }
        const others = r.others.length ? ` (the run also holds: ${r.others.map((x) => `${x.kind}, ${x.params.toLocaleString('en-US')} parameters`).join('; ')})` : '';
        const pick = r.searchPick ? `search pick '${r.searchPick.label}'${r.searchPick.others.length ? ` (others: ${r.searchPick.others.join(', ')}; --from <run>/finetune/<label>)` : ''}: ` : '';
        process.stdout.write(`${pick}exported the ${r.picked} ${r.model} (${r.params.toLocaleString('en-US')} parameters, ${r.file})${others} ` +
          `to ${r.out}: ONNX opset ${r.opset}, input [N, ${r.inputShape.join(', ')}], ${(r.bytes / 1e6).toFixed(2)} MB\n`);
      });
    });
}
