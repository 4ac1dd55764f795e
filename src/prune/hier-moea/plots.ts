/**
 * SVG plots of a search: the fronts (phase 1, phase 2, the fine-tuned picks, one-shot global
 * magnitude at the same sizes) and the hypervolume per generation. Both axes of the front plot are
 * logarithmic: the interesting part of a pruning front is a few tenths of a point of error at a few
 * percent of the weights, next to solutions at 90% error that a linear axis would make the scale of.
 */
import { join } from 'node:path';
import { frontSpec, lineSpec, writeSvg, type XY } from '../../report/plot.js';
import type { GenerationRecord } from './search.js';

/** Errors of 0 cannot sit on a log axis; they are drawn at this floor (in percent). */
const FLOOR = 0.01;

export interface PlotPoint { error: number; kept: number }

export function frontRows(series: Record<string, PlotPoint[]>): XY[] {
  const rows: XY[] = [];
  for (const [name, pts] of Object.entries(series)) {
    for (const p of pts) rows.push({ series: name, x: 100 * p.kept, y: Math.max(FLOOR, 100 * p.error) });
  }
  return rows;
}

export async function writeFrontPlots(dir: string, out: { phase1Front: PlotPoint[]; phase2Front: PlotPoint[]; history: GenerationRecord[] },
  reference: { kept: number; valError: number }[], picks: { sparsity: number; valErrorAfter: number }[], title = 'HIER-MOEA'): Promise<void> {
  const rows = frontRows({
    'phase 1 front': out.phase1Front,
    'phase 2 front': out.phase2Front,
    'fine-tuned picks': picks.map((p) => ({ kept: 1 - p.sparsity, error: p.valErrorAfter })),
    'global magnitude, one-shot': reference.map((r) => ({ kept: r.kept, error: r.valError })),
  });
  await writeSvg(join(dir, 'fronts.svg'), logAxes(frontSpec(rows, {
    title: `${title}: validation error against size`, x: '% of prunable weights kept (log)', y: 'validation error, % (log)',
  })));
  let x = 0;
  const hv: XY[] = out.history.map((h) => ({ series: `phase ${h.phase}`, x: ++x, y: h.hypervolume }));
  await writeSvg(join(dir, 'hypervolume.svg'), lineSpec(hv, { title: `${title}: hypervolume of the front, reference (1, 1)`, x: 'generation (both phases)', y: 'hypervolume', points: true }));
}

/** frontSpec with logarithmic axes (the spec is a plain vega-lite object). */
export function logAxes<S>(spec: S): S {
  const enc = (spec as { encoding?: Record<string, { scale?: Record<string, unknown> }> }).encoding;
  // vega-lite warns about `zero` on a log scale, and a log scale never includes zero anyway.
  if (enc?.x) enc.x.scale = { type: 'log' };
  if (enc?.y) enc.y.scale = { type: 'log' };
  // The default legend label limit cuts 'global magnitude, one-shot'.
  const color = enc?.color as { legend?: Record<string, unknown> } | undefined;
  if (color) color.legend = { ...(color.legend ?? {}), labelLimit: 400 };
  return spec;
}
