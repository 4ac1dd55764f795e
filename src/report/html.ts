/**
 * One self-contained HTML page for one or many runs: tables of their numbers, commands and
 * configurations, and vega-lite charts (training curves, sparsity per layer, accuracy against
 * sparsity across runs, HIER-MOEA's fronts per generation, EVO-POP's mass trajectories). vega and
 * vega-lite are inlined (no network needed to view it); the specs are compiled and rendered as SVG
 * in the page. Takes plain data (experiment/run-report.ts reads run folders into it).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';

export interface EpochPoint { epoch: number; trainLoss: number; trainAccuracy: number; valAccuracy?: number | null; valLoss?: number | null; lr?: number }
export interface LayerSparsity { name: string; sparsity: number; params: number }
export interface FrontGeneration { phase: number; generation: number; points: { kept: number; error: number }[] }
export interface MassLayer { layer: string; steps: number[]; /** masses[snapshot][population] */ masses: number[][] }

export interface RunSummary {
  /** The run folder as given. */
  id: string;
  /** Short name in legends: method (or kind), model, dataset, sparsity. */
  label: string;
  kind: string;
  model?: string;
  dataset?: string;
  /** The series this run belongs to in the accuracy-against-sparsity chart (the method). */
  method?: string;
  seed?: number;
  command?: string;
  config: Record<string, unknown>;
  /** Numbers for the summary table, in order (fractions are shown as percentages by the caller's formatting). */
  metrics: [string, string][];
  history?: EpochPoint[];
  layers?: LayerSparsity[];
  /** Achieved sparsity and test accuracy (fractions), for the chart across runs. */
  sparsity?: number;
  accuracy?: number;
  fronts?: FrontGeneration[];
  masses?: MassLayer[];
  /** Deployed size and latency, where the run has them. */
  deployed?: [string, string][];
}

export interface ReportData {
  title: string;
  runs: RunSummary[];
  /** Problems with some inputs (a folder without a run, a bad result.json): shown at the top. */
  problems?: string[];
  generated?: string;
}

/** A chart: its id on the page, the spec, and how many marks of which kind it draws (for tests and the page's self-check). */
export interface Chart { id: string; title: string; spec: TopLevelSpec; marks: { kind: 'line' | 'symbol' | 'rect' | 'rule'; count: number }[] }

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const pct = (x: number) => +(100 * x).toFixed(4);

/** The charts a set of runs has, in page order. */
export function reportCharts(runs: RunSummary[]): Chart[] {
  const charts: Chart[] = [];
  const withHistory = runs.filter((r) => r.history && r.history.length > 0);
  if (withHistory.length) {
    const loss = withHistory.flatMap((r) => r.history!.map((h) => ({ run: r.label, epoch: h.epoch + 1, loss: h.trainLoss })));
    charts.push({
      id: 'loss', title: 'Training loss per epoch',
      spec: {
        $schema: SCHEMA, width: 520, height: 260, data: { values: loss },
        mark: { type: 'line', point: false, tooltip: true },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
          y: { field: 'loss', type: 'quantitative', title: 'training loss', scale: { zero: false } },
          color: { field: 'run', type: 'nominal', title: null, legend: { labelLimit: 400 } },
        },
      } as TopLevelSpec,
      marks: [{ kind: 'line', count: withHistory.length }],
    });
    const acc = withHistory.flatMap((r) => r.history!.flatMap((h) => [
      { run: r.label, epoch: h.epoch + 1, split: 'train', accuracy: pct(h.trainAccuracy) },
      ...(typeof h.valAccuracy === 'number' ? [{ run: r.label, epoch: h.epoch + 1, split: 'validation', accuracy: pct(h.valAccuracy) }] : []),
    ]));
    const series = new Set(acc.map((a) => `${a.run}\u0000${a.split}`)).size;
    charts.push({
      id: 'accuracy', title: 'Train and validation accuracy per epoch',
      spec: {
        $schema: SCHEMA, width: 520, height: 260, data: { values: acc },
        mark: { type: 'line', point: false, tooltip: true },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
          y: { field: 'accuracy', type: 'quantitative', title: 'accuracy, %', scale: { zero: false } },
          color: { field: 'run', type: 'nominal', title: null, legend: { labelLimit: 400 } },
          strokeDash: { field: 'split', type: 'nominal', title: null },
        },
      } as TopLevelSpec,
      marks: [{ kind: 'line', count: series }],
    });
  }
  const withLayers = runs.filter((r) => r.layers && r.layers.length > 0);
  if (withLayers.length) {
    const rows = withLayers.flatMap((r) => r.layers!.map((l, i) => ({ run: r.label, layer: `${i}: ${l.name}`, sparsity: pct(l.sparsity), params: l.params })));
    charts.push({
      id: 'layers', title: 'Sparsity per layer',
      spec: {
        $schema: SCHEMA, width: { step: Math.max(8, Math.min(40, Math.floor(200 / withLayers.length))) } as unknown as number, height: 240,
        data: { values: rows },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          x: { field: 'layer', type: 'nominal', title: 'layer (prunable weights)', sort: null, axis: { labelAngle: -40, labelLimit: 160 } },
          xOffset: { field: 'run', type: 'nominal' },
          y: { field: 'sparsity', type: 'quantitative', title: 'sparsity, %', scale: { domain: [0, 100] } },
          color: { field: 'run', type: 'nominal', title: null, legend: { labelLimit: 400 } },
        },
      } as TopLevelSpec,
      marks: [{ kind: 'rect', count: rows.length }],
    });
  }
  const scored = runs.filter((r) => typeof r.sparsity === 'number' && typeof r.accuracy === 'number');
  if (scored.length >= 2) {
    const rows = scored.map((r) => ({ method: r.method ?? r.kind, sparsity: pct(r.sparsity!), accuracy: pct(r.accuracy!), seed: r.seed ?? 0, run: r.label }));
    // Seeds of one method at one sparsity: a point at their mean and a bar of +- one standard deviation.
    const groups = new Set(rows.map((r) => `${r.method}\u0000${r.sparsity.toFixed(2)}`)).size;
    const methods = new Set(rows.map((r) => r.method)).size;
    const rowsRounded = rows.map((r) => ({ ...r, sparsity: +r.sparsity.toFixed(2) }));
    charts.push({
      id: 'tradeoff', title: 'Test accuracy against sparsity (mean and standard deviation over seeds)',
      spec: {
        $schema: SCHEMA, width: 520, height: 300, data: { values: rowsRounded },
        encoding: {
          x: { field: 'sparsity', type: 'quantitative', title: 'sparsity of the prunable weights, %', scale: { zero: false, padding: 10 }, axis: { format: '.1f' } },
          color: { field: 'method', type: 'nominal', title: 'method' },
        },
        layer: [
          { mark: { type: 'errorbar', ticks: true }, encoding: { y: { field: 'accuracy', type: 'quantitative', title: 'test accuracy, %', scale: { zero: false }, axis: { format: '.2f' } } } },
          { mark: { type: 'line', strokeWidth: 1, opacity: 0.6 }, encoding: { y: { aggregate: 'mean', field: 'accuracy', type: 'quantitative' } } },
          { mark: { type: 'point', filled: true, size: 60, tooltip: true }, encoding: { y: { aggregate: 'mean', field: 'accuracy', type: 'quantitative' } } },
        ],
      } as TopLevelSpec,
      marks: [{ kind: 'symbol', count: groups }, { kind: 'line', count: methods }],
    });
  }
  for (const [i, r] of runs.entries()) {
    if (!r.fronts || r.fronts.length === 0) continue;
    const rows = r.fronts.flatMap((g, k) => g.points.map((p) => ({
      generation: k + 1, phase: `phase ${g.phase}`, kept: +(100 * p.kept).toPrecision(6), error: Math.max(0.01, +(100 * p.error).toPrecision(6)),
    })));
    charts.push({
      id: `fronts-${i}`, title: `HIER-MOEA fronts per generation: ${r.label}`,
      spec: {
        $schema: SCHEMA, width: 520, height: 320, data: { values: rows },
        mark: { type: 'line', point: { filled: true, size: 16 }, interpolate: 'step-after', strokeWidth: 1, tooltip: true },
        encoding: {
          x: { field: 'kept', type: 'quantitative', title: '% of prunable weights kept (log)', scale: { type: 'log' } },
          y: { field: 'error', type: 'quantitative', title: 'validation error, % (log)', scale: { type: 'log' } },
          color: { field: 'generation', type: 'quantitative', title: 'generation (both phases)', scale: { scheme: 'viridis' }, legend: { type: 'gradient', format: 'd' } },
          detail: { field: 'generation', type: 'nominal' },
          order: { field: 'kept' },
        },
      } as TopLevelSpec,
      marks: [{ kind: 'line', count: r.fronts.filter((g) => g.points.length > 0).length }],
    });
  }
  for (const [i, r] of runs.entries()) {
    if (!r.masses || r.masses.length === 0) continue;
    const rows: { layer: string; step: number; mass: number; population: number }[] = [];
    let lines = 0;
    for (const l of r.masses) {
      const n = l.masses[0]?.length ?? 0;
      lines += n;
      for (let p = 0; p < n; p++) for (let s = 0; s < l.masses.length; s++) rows.push({ layer: l.layer, step: l.steps[s], mass: +l.masses[s][p].toPrecision(4), population: p });
    }
    charts.push({
      id: `masses-${i}`, title: `EVO-POP population masses during training: ${r.label}`,
      spec: {
        $schema: SCHEMA, data: { values: rows },
        facet: { column: { field: 'layer', type: 'nominal', title: null } },
        spec: {
          width: 300, height: 220,
          mark: { type: 'line', strokeWidth: 0.6, opacity: 0.5 },
          encoding: {
            x: { field: 'step', type: 'quantitative', title: 'optimizer step' },
            y: { field: 'mass', type: 'quantitative', title: 'mass' },
            detail: { field: 'population', type: 'nominal' },
          },
        },
        resolve: { scale: { y: 'independent' } },
      } as TopLevelSpec,
      marks: [{ kind: 'line', count: lines }],
    });
  }
  return charts;
}

let libs: { vega: string; vegaLite: string } | null = null;
/** vega's and vega-lite's browser builds, read once. */
export function chartLibraries(): { vega: string; vegaLite: string } {
  if (!libs) {
    const require = createRequire(import.meta.url);
    // The packages export their schema files (in build/, beside the browser builds) but not package.json.
    const beside = (exported: string, name: string) => readFileSync(join(dirname(require.resolve(exported)), name), 'utf8');
    libs = { vega: beside('vega/vega-schema.json', 'vega.min.js'), vegaLite: beside('vega-lite/vega-lite-schema.json', 'vega-lite.min.js') };
  }
  return libs;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
/** JSON inside <script>: no "</script>" or "<!--" can end it early. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
/** A library inside <script>: the same guard for the (rare) "</script" in its strings. */
const scriptCode = (s: string) => s.replace(/<\/script/gi, '<\\/script');

function table(header: string[], rows: string[][], cls = ''): string {
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('') + '</tbody></table>';
}

/** The page. */
export function renderReportHtml(data: ReportData): string {
  const charts = reportCharts(data.runs);
  const { vega, vegaLite } = chartLibraries();
  // The summary table: one row per run, the union of the runs' metric names as columns.
  const cols: string[] = [];
  for (const r of data.runs) for (const [k] of r.metrics) if (!cols.includes(k)) cols.push(k);
  const summary = table(['run', ...cols], data.runs.map((r) => [r.label, ...cols.map((c) => r.metrics.find(([k]) => k === c)?.[1] ?? '')]), 'summary');
  const deployed = data.runs.filter((r) => r.deployed && r.deployed.length);
  const dcols: string[] = [];
  for (const r of deployed) for (const [k] of r.deployed!) if (!dcols.includes(k)) dcols.push(k);
  const details = data.runs.map((r, i) => `<details${data.runs.length === 1 ? ' open' : ''} id="run-${i}"><summary>${escapeHtml(r.label)} <span class="dim">${escapeHtml(r.id)}</span></summary>` +
    `<h4>Command</h4><pre class="command">${escapeHtml(r.command ?? '(not recorded)')}</pre>` +
    `<h4>Configuration</h4><pre class="config">${escapeHtml(JSON.stringify(r.config, null, 2))}</pre></details>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#20303f;color:#fff;padding:14px 28px}header h1{font-size:20px;margin:0}header .dim{color:#b8c4cf}
main{padding:12px 28px 40px;max-width:1300px}
section{background:#fff;border:1px solid #dde2e7;border-radius:6px;padding:12px 16px;margin:14px 0}
h2{font-size:16px;margin:2px 0 10px}h4{margin:10px 0 4px;font-size:13px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}th,td{border-bottom:1px solid #e6e9ed;padding:4px 10px;text-align:right;white-space:nowrap}
th{background:#f0f3f6;font-weight:600}td:first-child,th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:14px}.chart{min-width:300px}.chart h3{font-size:13px;margin:4px 0;color:#34495e}
pre{background:#f3f5f7;padding:8px 10px;border-radius:4px;overflow:auto;max-height:420px;font-size:12px}
.dim{color:#6b7885;font-weight:normal}.problems{background:#fff4f2;border-color:#f2c4bb}.problems li{color:#a3321f}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}.scroll{overflow-x:auto}
</style></head>
<body><header><h1>${escapeHtml(data.title)}</h1><div class="dim">${data.runs.length} run${data.runs.length === 1 ? '' : 's'}${data.generated ? ` · generated ${escapeHtml(data.generated)}` : ''} · topiary</div></header>
<main>
${data.problems?.length ? `<section class="problems"><h2>Not reported</h2><ul>${data.problems.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul></section>` : ''}
<section><h2>Results</h2><div class="scroll">${summary}</div></section>
${deployed.length ? `<section><h2>Deployed</h2><div class="scroll">${table(['run', ...dcols], deployed.map((r) => [r.label, ...dcols.map((c) => r.deployed!.find(([k]) => k === c)?.[1] ?? '')]), 'deployed')}</div></section>` : ''}
${charts.length ? `<section><h2>Charts</h2><div class="charts">${charts.map((c) => `<div class="chart"><h3>${escapeHtml(c.title)}</h3><div id="chart-${c.id}" data-marks="${escapeHtml(JSON.stringify(c.marks))}"></div></div>`).join('')}</div></section>` : ''}
<section><h2>Commands and configurations</h2>${details}</section>
</main>
<script>${scriptCode(vega)}</script>
<script>${scriptCode(vegaLite)}</script>
<script type="application/json" id="topiary-charts">${scriptJson(charts.map((c) => ({ id: c.id, spec: c.spec })))}</script>
<script>
(function () {
  var charts = JSON.parse(document.getElementById('topiary-charts').textContent);
  window.topiaryCharts = Promise.all(charts.map(function (c) {
    var el = document.getElementById('chart-' + c.id);
    var view = new vega.View(vega.parse(vegaLite.compile(c.spec).spec), { renderer: 'svg', container: el, hover: true });
    return view.runAsync().then(function () { return c.id; });
  })).then(function (ids) { document.body.setAttribute('data-rendered', String(ids.length)); return ids; },
    function (e) { console.error('topiary report: a chart failed to render: ' + e); throw e; });
})();
</script>
</body></html>
`;
}
