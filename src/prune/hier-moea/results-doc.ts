/**
 * docs/results/hier-moea.md from the runs of `topiary reproduce hier-moea`: per model, the fine-tuned
 * picks against the dense network, the issue's targets checked seed by seed, the hypervolumes of
 * both phases, and the front against one-shot global magnitude at 50/70/90% sparsity.
 */
import { markdownTable, mean } from '../../report/table.js';
import type { SearchConfig } from './config.js';
import type { PickResult, SearchResult } from './run.js';

export interface HierMoeaRunResult extends SearchResult {
  totalParams: number;
  prunableParams: number;
  prunableLayers: number;
  /** Wall time of the dense training (its result.json), when topiary trained it. */
  denseSeconds: number | null;
}

export interface ReproRun {
  key: string;
  title: string;
  seed: number;
  out: string;
  config: SearchConfig;
  denseConfig: Record<string, unknown>;
  result: HierMoeaRunResult;
  /** (minimum fraction of parameters removed, maximum points lost) pairs the issue sets for this model. */
  targets: [number, number][];
}

export interface DocInput {
  runs: ReproRun[];
  level: string;
  command: string;
  /** Per model key: the fronts plot, then the hypervolume plot (files beside the document). */
  plots: Record<string, string[]>;
  versions: Record<string, string | number>;
  date: string;
}

const p2 = (x: number) => (100 * x).toFixed(2);

/** Seconds spent fine-tuning, each fine-tuned network once. */
function fineTuneSeconds(r: HierMoeaRunResult): number {
  const seen = new Map<number, number>();
  for (const p of r.picks) seen.set(p.solution, p.seconds);
  return [...seen.values()].reduce((a, b) => a + b, 0);
}

/** Fraction of all parameters (biases and BatchNorm included) a pick removes. */
export function paramsRemoved(r: HierMoeaRunResult, pick: PickResult): number {
  return (r.prunableParams - pick.keptWeights) / r.totalParams;
}

/** Accuracy points lost against the dense network on the test set. */
export function pointsLost(r: HierMoeaRunResult, pick: PickResult): number {
  return 100 * ((r.denseTestAccuracy ?? NaN) - pick.testAccuracy);
}

/** The pick meeting (removed >= minRemoved, lost <= maxLost) with the most parameters removed, or null. */
export function meetsTarget(r: HierMoeaRunResult, minRemoved: number, maxLost: number): PickResult | null {
  const ok = r.picks.filter((p) => paramsRemoved(r, p) >= minRemoved && pointsLost(r, p) <= maxLost + 1e-9);
  return ok.sort((a, b) => paramsRemoved(r, b) - paramsRemoved(r, a))[0] ?? null;
}

export function renderResultsDoc(d: DocInput): string {
  const L: string[] = [];
  L.push('# HIER-MOEA: results', '');
  L.push(`Written by \`${d.command}\` on ${d.date}. Machine: 2-core CPU shared with other jobs, libtorch ${d.versions.libtorch} (CPU, ` +
    `${d.versions.threads} thread), node ${d.versions.node}. Method and every constant: [docs/methods/hier-moea.md](../methods/hier-moea.md).`, '');
  L.push(`**Budget: ${d.level}.** ${d.level === 'full' ? "The issue's budget." : "Smaller than the issue's (pop 40, 30 + 60 generations, " +
    '5000 validation examples, 3 seeds): what this machine could run. The numbers below are those of the reduced runs, not of the full budget.'}`, '');
  const vals = [...new Set(d.runs.map((r) => r.config.valSize))].sort((a, b) => a - b);
  const per = vals.map((n) => `with ${n} examples, one example is ${+(100 / n).toFixed(3)} point`).join('; ');
  L.push('How to read the tables. "val err" is measured on the search\'s validation subset (held out of the training data; ' +
    `${per}), the test set only once per network at the end. A fine-tuned network is ` +
    'the knee of the final Pareto set or, for "sparsity-s", the lowest-error solution with at least that sparsity (two labels ' +
    'can name the same network). Hypervolumes use the reference point (1, 1) on (validation error, fraction of prunable weights ' +
    'kept); "HV phase 1" and "HV phase 2" are those of each phase\'s archive (every non-dominated point it evaluated), ' +
    '"HV final set" that of the union of both.', '');
  L.push('Phase 1\'s first population holds one-shot global magnitude pruning at the `magnitudeSeeds` sparsities (50, 70 and 90% ' +
    'by default) and phase 2\'s starts from phase 1\'s front (docs/methods/hier-moea.md). So the check "front ≤ global magnitude ' +
    'at 50/70/90%" holds by construction at those sparsities; what the table beside it shows is the margin by which the search ' +
    'improves on that baseline.', '');
  const byKey = new Map<string, ReproRun[]>();
  for (const r of d.runs) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
  for (const [key, runs] of byKey) section(L, key, runs, d.plots[key]);
  L.push('## ResNet-56 and ResNet-110 on CIFAR-10 (recipes, not run here)', '');
  L.push('The paper\'s CIFAR runs are ready as recipes for a GPU and CIFAR-10 files in the data folder ' +
    '(`$TOPIARY_DATA/cifar10/`); each trains its dense network first (the `dense:` section), then searches:', '');
  L.push('```', 'topiary search --recipe recipes/hier-moea-resnet56.yaml --data-dir <data> --out runs/hier-moea/resnet56',
    'topiary search --recipe recipes/hier-moea-resnet110.yaml --data-dir <data> --out runs/hier-moea/resnet110', '```', '');
  L.push('They were not run: this machine has no GPU and no CIFAR files, and a CPU epoch of ResNet-56 on CIFAR-10 takes hours.', '');
  return L.join('\n');
}

function section(L: string[], key: string, runs: ReproRun[], plots: string[] | undefined): void {
  const first = runs[0];
  const c = first.config;
  L.push(`## ${first.title}`, '');
  L.push(`Dense network trained by topiary (\`${JSON.stringify(first.denseConfig)}\`, seed = search seed). Search: pop ${c.pop}, ` +
    `${c.phase1Gens} + ${c.phase2Gens} generations, ${c.valSize} validation examples, importance ${c.importance}, ` +
    `fine-tuning ${c.finetuneEpochs} epoch(s) at lr ${c.finetuneLr}; seeds ${runs.map((r) => r.seed).join(', ')} ` +
    `(${runs.length} seed${runs.length > 1 ? 's' : ''}). ${first.result.prunableParams.toLocaleString('en')} prunable weights in ` +
    `${first.result.prunableLayers} layers (the phase-1 genome) of ` +
    `${first.result.totalParams.toLocaleString('en')} parameters; runs in \`${first.out.replace(/seed_\d+$/, 'seed_*')}\`.`, '');

  L.push('### Fine-tuned solutions (test set, evaluated once)', '');
  const rows: (string | number)[][] = [];
  for (const r of runs) {
    const res = r.result;
    rows.push([r.seed, 'dense', '0.00', '0.00', p2(res.denseValError), '—', p2(res.denseTestAccuracy ?? NaN), '—']);
    for (const p of res.picks) {
      rows.push([r.seed, p.label, p2(p.sparsity), p2(paramsRemoved(res, p)), p2(p.valErrorBefore), p2(p.valErrorAfter), p2(p.testAccuracy), pointsLost(res, p).toFixed(2)]);
    }
  }
  L.push(markdownTable(['seed', 'network', 'weights pruned %', 'params removed %', 'val err before FT %', 'val err after FT %', 'test acc %', 'points lost'], rows), '');
  L.push('"val err" is on the search\'s validation subset; "params removed" counts every parameter (biases too) in the denominator.', '');

  L.push('### Targets', '');
  const hvOk = runs.map((r) => r.result.hypervolume.phase2 !== null && r.result.hypervolume.phase2 > r.result.hypervolume.phase1);
  const gmOk = runs.map((r) => r.result.atSparsity.every((a) => a.frontError !== null && a.frontError <= a.globalMagnitudeError));
  const yes = (xs: unknown[]) => `${xs.filter(Boolean).length}/${xs.length} seeds`;
  const targetRows = first.targets.map(([removed, lost]) => {
    const met = runs.map((r) => meetsTarget(r.result, removed, lost));
    return [`≥ ${Math.round(100 * removed)}% fewer parameters, ≤ ${lost} point${lost === 1 ? '' : 's'} lost (fine-tuned)`, yes(met),
      met.map((p, i) => `${runs[i].seed}: ${p ? `${p.label} (${p2(paramsRemoved(runs[i].result, p))}%, ${pointsLost(runs[i].result, p).toFixed(2)} pts)` : 'no'}`).join('; ')];
  });
  L.push(markdownTable(['target', 'met', 'per seed'], [
    ...targetRows,
    ['phase-2 hypervolume > phase-1 hypervolume', yes(hvOk), runs.map((r) => `${r.seed}: ${r.result.hypervolume.phase1.toFixed(4)} → ${r.result.hypervolume.phase2?.toFixed(4) ?? '—'}`).join('; ')],
    ['front ≤ one-shot global magnitude at 50/70/90% (before FT)', yes(gmOk), runs.map((r) => `${r.seed}: ` +
      r.result.atSparsity.map((a) => `${Math.round(100 * a.sparsity)}% ${a.frontError !== null && a.frontError <= a.globalMagnitudeError ? 'yes' : 'no'}`).join(', ')).join('; ')],
  ]), '');

  L.push('### Before fine-tuning: the front against one-shot global magnitude', '');
  const gmRows: (string | number)[][] = [];
  for (const r of runs) {
    for (const a of r.result.atSparsity) {
      gmRows.push([r.seed, p2(a.sparsity), a.frontError === null ? '—' : p2(a.frontError), p2(a.globalMagnitudeError)]);
    }
  }
  L.push(markdownTable(['seed', 'sparsity %', 'front: lowest val error at ≥ this sparsity %', 'global magnitude val error %'], gmRows), '');
  // Away from the seeded sparsities the comparison is not built in: every size of the final set.
  // reference[i] is global magnitude at solutions[i]'s size (run.ts builds them one to one).
  const sizes = runs.map((r) => {
    const count = { better: 0, equal: 0, worse: 0 };
    r.result.solutions.forEach((s, i) => {
      const ref = r.result.reference[i].valError;
      count[s.valError < ref ? 'better' : s.valError > ref ? 'worse' : 'equal']++;
    });
    return `seed ${r.seed}: the front is better at ${count.better}, equal at ${count.equal} and worse at ${count.worse} of its ${r.result.solutions.length} sizes`;
  });
  L.push(`At every size of the final set (global magnitude pruned to the same number of weights): ${sizes.join('; ')}.`, '');

  L.push('### Search', '');
  L.push(markdownTable(['seed', 'HV phase 1', 'HV phase 2', 'HV final set', 'final set size', 'heavy anchor (err %, kept %)', 'light anchor (err %, kept %)', 'evaluations', 'eval/s', 'dense training s', 'search s', 'fine-tuning s'],
    runs.map((r) => {
      const res = r.result, a = res.anchors;
      return [r.seed, res.hypervolume.phase1.toFixed(4), res.hypervolume.phase2?.toFixed(4) ?? '—', res.hypervolume.final.toFixed(4), res.solutions.length,
        a ? `${p2(a.heavyPoint[0])}, ${p2(a.heavyPoint[1])}` : '—', a ? `${p2(a.lightPoint[0])}, ${p2(a.lightPoint[1])} (${a.lightRule})` : '—',
        res.evaluations, res.evaluationsPerSecond.toFixed(2), res.denseSeconds === null ? '—' : res.denseSeconds.toFixed(0), res.searchSeconds.toFixed(0),
        fineTuneSeconds(res).toFixed(0)];
    })), '');
  L.push(`Mean evaluations per second: ${mean(runs.map((r) => r.result.evaluationsPerSecond)).toFixed(2)}. Times are the sums over ` +
    'every invocation that worked on a run (an interrupted or repeated reproduction resumes and reuses what is done).', '');
  for (const p of plots ?? []) {
    const what = p.includes('hypervolume') ? 'hypervolume of the front per generation' : 'fronts (log axes)';
    L.push(`![${first.title}, seed ${first.seed}: ${what}](${p})`, '', `${first.title}, seed ${first.seed}: ${what}.`, '');
  }
}
