/**
 * Plots as SVG through vega-lite (declarative specs, rendered headless by vega: no canvas, no browser).
 * Each helper takes plain rows; `writeSvg` renders any vega-lite spec.
 */
import { writeFileSync } from 'node:fs';
import type { TopLevelSpec } from 'vega-lite';

/** vega is loaded on first use: it takes about a second to import, and most commands never plot. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export async function writeSvg(path: string, spec: TopLevelSpec): Promise<void> {
  writeFileSync(path, await renderSvg(spec));
}

export interface XY { x: number; y: number; series: string }

/** Lines (one per series), optionally with points; axes titled. */
export function lineSpec(rows: XY[], o: { title: string; x: string; y: string; points?: boolean; width?: number; height?: number; yZero?: boolean }): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title, width: o.width ?? 480, height: o.height ?? 300,
    data: { values: rows },
    mark: { type: 'line', point: o.points ?? false },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.x },
      y: { field: 'y', type: 'quantitative', title: o.y, scale: { zero: o.yZero ?? false } },
      color: { field: 'series', type: 'nominal', title: null },
    },
  } as TopLevelSpec;
}

/** Points per series (Pareto fronts), with lines joining each series' points in x order. */
export function frontSpec(rows: XY[], o: { title: string; x: string; y: string; width?: number; height?: number }): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title, width: o.width ?? 480, height: o.height ?? 320,
    data: { values: rows },
    mark: { type: 'line', point: { filled: true, size: 40 }, interpolate: 'step-after', strokeWidth: 1 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.x },
      y: { field: 'y', type: 'quantitative', title: o.y, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null },
      order: { field: 'x' },
    },
  } as TopLevelSpec;
}

/** Small multiples: one panel per `panel` value, many thin lines (`series`) in each. */
export function panelLinesSpec(rows: (XY & { panel: string })[], o: { title: string; x: string; y: string; width?: number; height?: number }): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    data: { values: rows },
    facet: { column: { field: 'panel', type: 'nominal', title: null } },
    spec: {
      width: o.width ?? 360, height: o.height ?? 240,
      mark: { type: 'line', strokeWidth: 0.6, opacity: 0.5 },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: o.x },
        y: { field: 'y', type: 'quantitative', title: o.y },
        detail: { field: 'series', type: 'nominal' },
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}
