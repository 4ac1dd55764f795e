#!/usr/bin/env node
// Keeps imports flowing one way (DESIGN.md): a file may import its own folder or a lower layer.
// evo and report are leaf utilities over core only; nn, optim and data are peers that don't import each other.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const RANK = { core: 0, evo: 1, report: 1, tensor: 1, nn: 2, optim: 2, data: 2, graph: 2.5, models: 3, train: 4, prune: 5, experiment: 6, api: 6, queue: 6.5, cli: 7 };  // queue: on experiment (imports it), under cli
const ONLY_CORE = new Set(['evo', 'report']);
const root = resolve(dirname(new URL(import.meta.url).pathname), '..', 'src');

function* files(dir) {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (p.endsWith('.ts')) yield p;
  }
}
const layerOf = (p) => relative(root, p).split('/')[0].replace(/\.ts$/, '');
const problems = [];
for (const file of files(root)) {
  const from = layerOf(file);
  if (!(from in RANK)) continue; // src/index.ts: the public surface may import anything
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^\s*(?:import|export)[^'"]*from\s+['"](\.[^'"]+)['"]/gm)) {
    const target = layerOf(resolve(dirname(file), m[1]));
    if (target === from || !(target in RANK)) continue;
    const ok = ONLY_CORE.has(from) ? target === 'core' : RANK[target] < RANK[from];
    if (!ok) problems.push(`${relative(process.cwd(), file)}: ${from} must not import ${target} ('${m[1]}')`);
  }
}
if (problems.length) {
  console.error(`layer check: ${problems.length} import(s) against the layer order (core -> tensor -> nn/optim/data -> models -> train -> prune -> experiment -> cli):`);
  for (const p of problems) console.error('  ' + p);
  process.exit(1);
}
console.log('layer check: ok');
