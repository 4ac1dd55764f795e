/**
 * The EVO-POP results document: tables of accuracy after removal (mean ± std over seeds) per
 * dynamics and control, the paper's figures beside ours, extinctions per layer, the checks of the
 * issue's targets, and the mass-trajectory plot rows.
 */
import { markdownTable, mean, pctMeanStd } from '../../report/table.js';
import type { XY } from '../../report/plot.js';
import type { MassTrajectory } from './selection.js';

export interface RowLike { criterion: string; fraction: number; accuracy: number; params: number; kept: number[] }
/** What the report needs of one finished run (a subset of evo.json). */
export interface RunLike {
  model: string;
  dynamics: string;
  fitness: string;
  seed: number;
  eta?: number;
  denseAccuracy: number;
  denseParams: number;
  trainSeconds: number;
  pruneSeconds: number;
  populations: Record<string, number>;
  extinct: Record<string, number>;
  rows: RowLike[];
}

/** Runs of one arm (model, dynamics, fitness, eta) over seeds. */
export interface Arm { label: string; runs: RunLike[] }

const accs = (runs: RunLike[], criterion: string, fraction: number) =>
  runs.map((r) => r.rows.find((x) => x.criterion === criterion && x.fraction === fraction)?.accuracy).filter((v): v is number => v !== undefined);

export const meanAcc = (runs: RunLike[], criterion: string, fraction: number): number => mean(accs(runs, criterion, fraction));

const pct = (xs: number[]) => (xs.length ? pctMeanStd(xs) : '—');

/** Main table: per arm, dense accuracy and accuracy after removing each fraction by mass. */
export function massTable(arms: Arm[], fractions: number[], paper?: { label: string; dense: string; at: Record<number, string> }): string {
  const header = ['network (fitness, eta)', 'seeds', 'dense', ...fractions.map((f) => `−${Math.round(100 * f)}% by mass`), 'params at −' + Math.round(100 * fractions[fractions.length - 1]) + '%'];
  const rows = arms.map((a) => {
    const last = fractions[fractions.length - 1];
    const crit = a.runs[0]?.dynamics === 'none' ? null : 'mass';
    const params = crit ? mean(a.runs.map((r) => r.rows.find((x) => x.criterion === crit && x.fraction === last)?.params ?? NaN)) : NaN;
    return [a.label, a.runs.length, pct(a.runs.map((r) => r.denseAccuracy)), ...fractions.map((f) => (crit ? pct(accs(a.runs, crit, f)) : 'n/a')),
      Number.isFinite(params) ? `${Math.round(params).toLocaleString('en-US')} of ${a.runs[0].denseParams.toLocaleString('en-US')}` : '—'];
  });
  if (paper) rows.push([paper.label, '—', paper.dense, ...fractions.map((f) => paper.at[f] ?? '—'), '—']);
  return markdownTable(header, rows);
}

/** Controls on the same trained networks: one row per (arm, criterion). */
export function controlTable(arms: Arm[], fractions: number[], criteria: string[]): string {
  const rows: (string | number)[][] = [];
  for (const a of arms) {
    for (const c of criteria) {
      if (!a.runs.some((r) => r.rows.some((x) => x.criterion === c))) continue;
      rows.push([a.label, c, ...fractions.map((f) => pct(accs(a.runs, c, f)))]);
    }
  }
  return markdownTable(['trained network', 'removal rule', ...fractions.map((f) => `−${Math.round(100 * f)}%`)], rows);
}

/** Extinct populations per layer (mean over seeds, and the range). */
export function extinctTable(arms: Arm[]): string {
  const layers = [...new Set(arms.flatMap((a) => a.runs.flatMap((r) => Object.keys(r.populations))))].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  const rows = arms.map((a) => [a.label, ...layers.map((l) => {
    const xs = a.runs.map((r) => r.extinct[l]).filter((v) => v !== undefined);
    const n = a.runs[0]?.populations[l];
    if (!xs.length || n === undefined) return '—';
    const lo = Math.min(...xs), hi = Math.max(...xs);
    return `${mean(xs).toFixed(1)} of ${n}${xs.length > 1 ? ` (${lo}–${hi})` : ''}`;
  })]);
  return markdownTable(['network', ...layers.map((l) => `layer ${l}`)], rows);
}

/** Smaller SVG text for many thin lines: path coordinates to whole pixels, no per-line accessibility labels. */
export function compactSvg(svg: string): string {
  return svg
    .replace(/ aria-label="[^"]*" role="graphics-symbol" aria-roledescription="line mark"/g, '')
    .replace(/ d="([^"]*)"/g, (_m, d: string) => ` d="${d.replace(/-?\d+\.\d+/g, (v) => String(Math.round(Number(v))))}"`);
}

/** Rows for panelLinesSpec: one line per population, one panel per layer. */
export function trajectoryRows(t: MassTrajectory, layerTitle: (name: string, n: number) => string): (XY & { panel: string })[] {
  const rows: (XY & { panel: string })[] = [];
  for (const [name, snaps] of Object.entries(t.masses)) {
    const n = snaps[0]?.length ?? 0;
    const panel = layerTitle(name, n);
    for (let i = 0; i < n; i++) {
      for (let s = 0; s < snaps.length; s++) rows.push({ x: t.steps[s], y: snaps[s][i], series: `${name}:${i}`, panel });
    }
  }
  return rows;
}

export interface Check { what: string; value: string; target: string; ok: boolean }

/** The issue's numbers to reach, judged on the arms (mlp arms with dynamics) and the dense control. */
export function checks(dyn: Arm[], fractions: number[]): Check[] {
  const out: Check[] = [];
  for (const a of dyn) {
    const d = mean(a.runs.map((r) => r.denseAccuracy));
    out.push({ what: `dense accuracy, ${a.label}`, value: (100 * d).toFixed(2), target: '≥ 98.00', ok: d >= 0.98 });
  }
  const score = (a: Arm) => mean(fractions.map((f) => meanAcc(a.runs, 'mass', f)));
  const best = [...dyn].sort((x, y) => score(y) - score(x))[0];
  if (!best) return out;
  const at = (f: number, c = 'mass') => meanAcc(best.runs, c, f);
  const f35 = fractions.find((f) => Math.abs(f - 0.35) < 1e-9), f50 = fractions.find((f) => Math.abs(f - 0.5) < 1e-9);
  if (f35 !== undefined) out.push({ what: `best (${best.label}) after removing 35%`, value: (100 * at(f35)).toFixed(2), target: '≥ 95.50', ok: at(f35) >= 0.955 });
  if (f50 !== undefined) out.push({ what: `best (${best.label}) after removing 50%`, value: (100 * at(f50)).toFixed(2), target: '≥ 88.60', ok: at(f50) >= 0.886 });
  for (const f of fractions) {
    out.push({ what: `best beats random removal at −${Math.round(100 * f)}%`, value: `${(100 * at(f)).toFixed(2)} vs ${(100 * at(f, 'random')).toFixed(2)}`, target: '>', ok: at(f) > at(f, 'random') });
  }
  if (f50 !== undefined) out.push({ what: 'best ≥ L2-norm control at −50%', value: `${(100 * at(f50)).toFixed(2)} vs ${(100 * at(f50, 'l2')).toFixed(2)}`, target: '≥', ok: at(f50) >= at(f50, 'l2') });
  return out;
}

export function checkTable(cs: Check[]): string {
  return markdownTable(['target (issue)', 'ours', 'needed', 'met'], cs.map((c) => [c.what, c.value, c.target, c.ok ? 'yes' : '**no**']));
}
