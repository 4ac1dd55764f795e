/**
 * `topiary shrink --from <run>`: the physically smaller model of a structured prune run (its
 * model.safetensors under its masks.safetensors), written next to them as model.shrunk.graph.json
 * + model.shrunk.safetensors (docs/methods/structured.md). Its result.json gains a `shrunk` entry.
 */
import { Command } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, SerializationError } from '../core/errors.js';
import { getDatasetSpec } from '../data/sources.js';
import { createModel } from '../models/registry.js';
import { amendResult, loadWeights } from '../prune/methods/stage.js';
import { writeShrunk } from '../prune/shrink-run.js';
import { writeShrunkUnitsFromMasks } from '../prune/heads-shrink.js';
import { loadSafetensors } from '../tensor/safetensors.js';
import { dispose } from '../tensor/scope.js';
import { runCommand } from './common.js';

/** The run's training config (model, dataset, widths) from its result.json. */
function runConfig(dir: string): { model: string; dataset: string; widths?: number[]; granularity?: unknown; unit?: unknown } {
  const f = join(dir, 'result.json');
  if (!existsSync(f)) throw new ConfigError(`from: '${dir}' holds no result.json (not a finished run folder)`, [{ path: 'from', message: 'no result.json' }]);
  let r: { config?: { model?: unknown; dataset?: unknown; widths?: unknown }; granularity?: unknown; pruneOptions?: { unit?: unknown } };
  try {
    r = JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    throw new SerializationError(`${f}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const c = r.config;
  if (!c || typeof c.model !== 'string' || typeof c.dataset !== 'string') throw new SerializationError(`${f}: no config.model / config.dataset`);
  return { model: c.model, dataset: c.dataset, widths: Array.isArray(c.widths) ? (c.widths as number[]) : undefined, granularity: r.granularity, unit: r.pruneOptions?.unit };
}

export async function shrinkRun(dir: string): Promise<Record<string, unknown>> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ConfigError(`from: '${dir}' is not a run folder`, [{ path: 'from', message: 'not a folder' }]);
  const c = runConfig(dir);
  for (const f of ['model.safetensors', 'masks.safetensors']) {
    if (!existsSync(join(dir, f))) throw new ConfigError(`from: '${dir}' holds no ${f}${f === 'masks.safetensors' ? ' (not a prune run)' : ''}`, [{ path: 'from', message: `no ${f}` }]);
  }
  if (c.granularity === 'unstructured') throw new ConfigError(`from: '${dir}' is an unstructured prune run: its masks remove single weights, not channels (prune with --granularity structured)`, [{ path: 'from', message: 'unstructured run' }]);
  const spec = getDatasetSpec(c.dataset);
  const inputShape = [...spec.inputShape];
  const model = createModel(c.model, { inputShape, numClasses: spec.numClasses, widths: c.widths });
  const { tensors: masks } = loadSafetensors(join(dir, 'masks.safetensors'));
  try {
    loadWeights(model, join(dir, 'model.safetensors'));
    // A run over a transformer's heads / neurons (--unit) shrinks by units (prune/heads-shrink.ts).
    const s = typeof c.unit === 'string' && c.unit !== 'channels' ? writeShrunkUnitsFromMasks(model, masks, c.unit as 'heads', inputShape, dir) : writeShrunk(model, masks, inputShape, dir);
    amendResult(dir, { shrunk: s });
    return { from: dir, model: c.model, ...s };
  } finally {
    dispose(masks);
    model.dispose();
  }
}

export function shrinkCommand(): Command {
  return new Command('shrink')
    .description('write the physically smaller model of a structured prune run (model.shrunk.graph.json + model.shrunk.safetensors)')
    .requiredOption('--from <run>', 'a prune run folder (result.json, model.safetensors, masks.safetensors)')
    .option('--json', 'print the summary as JSON on stdout')
    .option('--verbose', 'show stacks on errors')
    .action(async (opts: Record<string, unknown>) => {
      await runCommand(!!opts.verbose, async () => {
        const r = await shrinkRun(String(opts.from));
        if (opts.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return; }
        const p = r.params as { masked: number; shrunk: number }, m = r.macs as { masked: number; shrunk: number };
        process.stdout.write(`shrunk ${r.model}: ${p.masked} -> ${p.shrunk} parameters, ${m.masked} -> ${m.shrunk} MACs, ` +
          `max |masked - shrunk| ${(r.maxAbsDiff as number).toExponential(1)}; wrote ${join(String(opts.from), 'model.shrunk.graph.json')} and model.shrunk.safetensors\n`);
      });
    });
}
