/**
 * The EVO-POP results document: tables of accuracy after removal (mean ± std over seeds) per
 * dynamics and control, the paper's figures beside ours, extinctions per layer, the checks of the
 * issue's targets, and the mass-trajectory plot rows. The best dynamic is chosen on the validation
 * split (`bestOnValidation`), never on the test set; its test accuracy is what is reported.
 */
import { markdownTable, mean, pctMeanStd } from '../../report/table.js';
import type { XY } from '../../report/plot.js';
import type { MassTrajectory } from './selection.js';

/** One removal row: `accuracy` on the test split, `valAccuracy` on the held-out validation split. */
export interface RowLike { criterion: string; fraction: number; accuracy: number; valAccuracy?: number; valLoss?: number; params: number; kept: number[] }
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
  /** Set when the validation accuracies were filled in after the run, from its saved model. */
  validationFilledIn?: { seconds: number };
}

/** Runs of one arm (model, dynamics, fitness, eta) over seeds. */
export interface Arm { label: string; runs: RunLike[] }

const accs = (runs: RunLike[], criterion: string, fraction: number) =>
  runs.map((r) => r.rows.find((x) => x.criterion === criterion && x.fraction === fraction)?.accuracy).filter((v): v is number => v !== undefined);

export const meanAcc = (runs: RunLike[], criterion: string, fraction: number): number => mean(accs(runs, criterion, fraction));

/** Validation accuracies (or losses) of a (criterion, fraction) over runs; null when a run has no such row or no such value in it. */
function valOf(runs: RunLike[], criterion: string, fraction: number, key: 'valAccuracy' | 'valLoss'): number[] | null {
  const xs = runs.map((r) => r.rows.find((x) => x.criterion === criterion && x.fraction === fraction)?.[key]);
  return xs.length > 0 && xs.every((v): v is number => v !== undefined) ? xs : null;
}

/** Mean validation accuracies closer than this are a tie (they are counts over thousands of images; the rest is float rounding). */
export const VAL_TIE = 1e-9;

/** How an arm is judged for selection: mean over seeds and fractions of its accuracy after removal by mass. */
export interface Selection {
  best: Arm;
  /**
   * Per arm (in the given order): the mean validation accuracy (what selects), the mean validation
   * loss (what breaks a tie; NaN when not recorded) and the mean test accuracy (what is reported).
   */
  scores: { arm: Arm; val: number; valLoss: number; test: number }[];
  /** Other arms whose validation accuracy ties the best's (within VAL_TIE): the validation loss, else the order, decided. */
  tiedWith: Arm[];
}

/**
 * The best dynamic, chosen on the validation split: the arm with the highest validation accuracy
 * after removal by mass, averaged over seeds and fractions; a tie (within VAL_TIE) goes to the lower
 * mean validation loss, and failing that to the first arm. The test accuracy plays no part in the
 * choice. Null when some arm lacks validation accuracy for some run and fraction (runs without a
 * validation split): then nothing is chosen, rather than falling back to test.
 */
export function bestOnValidation(arms: Arm[], fractions: number[]): Selection | null {
  if (arms.length === 0 || fractions.length === 0) return null;
  const scores: Selection['scores'] = [];
  for (const arm of arms) {
    const acc = fractions.map((f) => valOf(arm.runs, 'mass', f, 'valAccuracy'));
    if (acc.some((xs) => xs === null)) return null;
    const loss = fractions.map((f) => valOf(arm.runs, 'mass', f, 'valLoss'));
    scores.push({
      arm, val: mean(acc.map((xs) => mean(xs!))),
      valLoss: loss.every((xs) => xs !== null) ? mean(loss.map((xs) => mean(xs!))) : NaN,
      test: mean(fractions.map((f) => meanAcc(arm.runs, 'mass', f))),
    });
  }
  const better = (a: Selection['scores'][number], b: Selection['scores'][number]) =>
    Math.abs(a.val - b.val) > VAL_TIE ? a.val > b.val : a.valLoss < b.valLoss; // NaN loss: never better, the earlier arm stays
  let best = scores[0];
  for (const s of scores) if (better(s, best)) best = s;
  return { best: best.arm, scores, tiedWith: scores.filter((s) => s !== best && Math.abs(s.val - best.val) <= VAL_TIE).map((s) => s.arm) };
}

/** The selection, shown: per arm, mean validation and test accuracy over the fractions, the chosen arm marked. */
export function selectionTable(sel: Selection, fractions: number[]): string {
  const span = fractions.map((f) => `−${Math.round(100 * f)}%`);
  return markdownTable(
    [`network`, `validation accuracy after removal by mass, mean over ${span.join(', ')} (selects)`, 'validation loss, same mean (breaks ties)', 'test accuracy, same mean (reported)', 'chosen'],
    sel.scores.map((s) => [s.arm.label, (100 * s.val).toFixed(3), Number.isFinite(s.valLoss) ? s.valLoss.toFixed(4) : '—', (100 * s.test).toFixed(2), s.arm === sel.best ? '**best**' : '']),
  );
}

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

/**
 * The issue's numbers to reach, judged on the arms (mlp arms with dynamics). The dense accuracy of
 * every arm is checked; the targets after removal are checked on the best dynamic chosen on the
 * validation split (bestOnValidation), with its test accuracy; without validation accuracies no best
 * is chosen and a failed check says so.
 */
export function checks(dyn: Arm[], fractions: number[]): Check[] {
  const out: Check[] = [];
  for (const a of dyn) {
    const d = mean(a.runs.map((r) => r.denseAccuracy));
    out.push({ what: `dense accuracy, ${a.label}`, value: (100 * d).toFixed(2), target: '≥ 98.00', ok: d >= 0.98 });
  }
  if (dyn.length === 0) return out;
  const sel = bestOnValidation(dyn, fractions);
  if (!sel) {
    out.push({ what: 'best dynamic (chosen on validation accuracy)', value: 'no validation accuracy recorded', target: 'a validation split', ok: false });
    return out;
  }
  const best = sel.best;
  const at = (f: number, c = 'mass') => meanAcc(best.runs, c, f);
  const f35 = fractions.find((f) => Math.abs(f - 0.35) < 1e-9), f50 = fractions.find((f) => Math.abs(f - 0.5) < 1e-9);
  if (f35 !== undefined) out.push({ what: `best on validation (${best.label}) after removing 35%, test`, value: (100 * at(f35)).toFixed(2), target: '≥ 95.50', ok: at(f35) >= 0.955 });
  if (f50 !== undefined) out.push({ what: `best on validation (${best.label}) after removing 50%, test`, value: (100 * at(f50)).toFixed(2), target: '≥ 88.60', ok: at(f50) >= 0.886 });
  for (const f of fractions) {
    out.push({ what: `best beats random removal at −${Math.round(100 * f)}%`, value: `${(100 * at(f)).toFixed(2)} vs ${(100 * at(f, 'random')).toFixed(2)}`, target: '>', ok: at(f) > at(f, 'random') });
  }
  if (f50 !== undefined) out.push({ what: 'best ≥ L2-norm control at −50%', value: `${(100 * at(f50)).toFixed(2)} vs ${(100 * at(f50, 'l2')).toFixed(2)}`, target: '≥', ok: at(f50) >= at(f50, 'l2') });
  return out;
}

export function checkTable(cs: Check[]): string {
  return markdownTable(['target (issue)', 'ours', 'needed', 'met'], cs.map((c) => [c.what, c.value, c.target, c.ok ? 'yes' : '**no**']));
}
