/**
 * The report page in a real browser (Debian's chromium through playwright-core, no download): run
 * folders in topiary's formats (a dense run, PMP and GMP at two sparsities and two seeds, a HIER-MOEA
 * search with its generations, an EVO-POP run with its masses) plus broken ones become one page
 * that loads with no console error, whose tables hold result.json's numbers and whose charts have
 * rendered SVG marks in the expected numbers; a screenshot is written for a person to look at
 * (runs/test-artifacts/report.png). Then the CLI: `topiary report` with good and bad folders, and a
 * `topiary train` run that writes report.html into its folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { writeReport, writeResultsPage } from '../../src/experiment/run-report.js';
import { dataRoot, repoRoot } from '../nn/util.js';

const CHROMIUM = '/usr/bin/chromium';
const skipBrowser = !existsSync(CHROMIUM) && `no ${CHROMIUM} (apt-get install chromium)`;
const root = mkdtempSync(join(tmpdir(), 'topiary-report-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

function put(dir: string, files: Record<string, unknown>): string {
  const d = join(root, dir);
  mkdirSync(d, { recursive: true });
  for (const [f, v] of Object.entries(files)) writeFileSync(join(d, f), typeof v === 'string' ? v : JSON.stringify(v));
  return d;
}

const config = (over: Record<string, unknown> = {}) => ({ model: 'lenet_300_100', dataset: 'mnist', epochs: 3, batchSize: 128, lr: 0.05, seed: 0, ...over });
const history = (accs: number[]) => accs.map((a, epoch) => ({ epoch, lr: 0.05, trainLoss: 1 / (epoch + 2), trainAccuracy: a - 0.01, seconds: 1, extra: {}, val: { accuracy: a, loss: 0.1, n: 6000 } }));
const LAYERS = [['1.weight', 235200], ['3.weight', 30000], ['5.weight', 1000]] as const;

const runs: { dir: string; result: Record<string, unknown> }[] = [];
runs.push({ dir: 'dense', result: { kind: 'train', model: 'lenet_300_100', dataset: 'mnist', config: config(), seed: 0, completed: true, testAccuracy: 0.9812, bestValAccuracy: 0.9799, params: 266610, nonzeroParams: 266610, history: history([0.95, 0.97, 0.98]), command: 'topiary train --model lenet_300_100 --dataset mnist --epochs 3' } });
const accuracy: Record<string, number> = {};
for (const method of ['pmp', 'gmp']) {
  for (const sparsity of [0.9, 0.98]) {
    for (const seed of [0, 1]) {
      const acc = +(0.99 - (sparsity - 0.9) * (method === 'pmp' ? 0.2 : 0.5) - 0.001 * seed).toFixed(4);
      accuracy[`${method}_${sparsity}_${seed}`] = acc;
      runs.push({ dir: `prune/${method}_${sparsity}/seed_${seed}`, result: {
        kind: 'prune', model: 'lenet_300_100', dataset: 'mnist', method, config: config({ seed }), seed, completed: true, testAccuracy: acc, requestedSparsity: sparsity,
        achievedSparsity: sparsity, params: 266610, nonzeroParams: Math.round(266610 * (1 - sparsity)), history: history([0.9, 0.95, acc]),
        sparsityLayers: LAYERS.map(([name, total], i) => ({ name, total, kept: Math.round(total * (1 - sparsity)), sparsity: +(sparsity - 0.05 * i).toFixed(4) })),
      } });
    }
  }
}
const generations = [
  { phase: 1, generation: 0, front: [[0.5, 0.02], [0.1, 0.2], [0.02, 0.8]] },
  { phase: 1, generation: 1, front: [[0.3, 0.02], [0.05, 0.2], [0.015, 0.8]] },
  { phase: 2, generation: 0, front: [[0.2, 0.02], [0.03, 0.2]] },
  { phase: 2, generation: 1, front: [[0.1, 0.02], [0.02, 0.2], [0.011, 0.7], [0.01, 1]] },
].map((g) => ({ ...g, evaluations: 10, hypervolume: 0.5, bestError: 0.01, minKept: 0.02, seconds: 1 }));
const search = { kind: 'hier-moea', model: 'lenet5', dataset: 'mnist', config: { pop: 8, phase1Gens: 2, phase2Gens: 2, seed: 0 }, completed: true,
  hypervolume: { phase1: 0.9, phase2: 0.95, final: 0.9512 }, solutions: [{}, {}, {}], denseTestAccuracy: 0.9912,
  picks: [{ label: 'knee', sparsity: 0.95, testAccuracy: 0.9871 }] };
const masses = { steps: [0, 10, 20, 30], masses: { fc1: [[1, 1, 1, 1, 1], [1.2, 0.9, 1, 0.8, 1.1], [1.5, 0.7, 1, 0.5, 1.3], [2, 0.4, 1, 0.1, 1.5]], fc2: [[1, 1, 1], [1.1, 1, 0.9], [1.2, 1, 0.7], [1.4, 1, 0.5]] } };
const evo = { kind: 'evo_pop', model: 'mlp', dataset: 'mnist', config: config({ model: 'mlp' }), seed: 0, completed: true, testAccuracy: 0.9755, history: history([0.9, 0.95, 0.97]) };
const evoSummary = { kind: 'evo_pop', denseAccuracy: 0.9755, rows: [{ criterion: 'mass', fraction: 0.5, accuracy: 0.9611 }, { criterion: 'random', fraction: 0.5, accuracy: 0.8 }] };

const folders = runs.map((r) => put(r.dir, { 'result.json': r.result }));
folders.push(put('search', { 'result.json': search, 'history.json': generations }));
folders.push(put('evo', { 'result.json': evo, 'trajectory.json': masses, 'evo.json': evoSummary, 'deployed.json': { bytes: 123456, latencyMs: 0.42 } }));
const bad = { empty: put('empty', {}), truncated: put('truncated', { 'result.json': '{"kind": "train", "config": {"mod' }), foreign: put('foreign', { 'result.json': { name: 'x', loss: [1, 2] } }) };

const fmt = (x: number) => `${(100 * x).toFixed(2)}%`;
const LABEL = (method: string, sparsity: number, seed: number) => `${method} lenet_300_100/mnist ${(100 * sparsity).toFixed(1)}% seed ${seed}`;

test('the page in chromium: tables hold result.json\'s numbers, charts draw their marks, no console error', { skip: skipBrowser, timeout: 120_000 }, async () => {
  const file = join(root, 'report.html');
  const r = writeReport([...folders, ...Object.values(bad)], file);
  assert.equal(r.runs, folders.length);
  assert.deepEqual(r.problems, [
    `${bad.empty}: holds no run (no result.json in it or below it)`,
    `${join(bad.truncated, 'result.json')}: not valid JSON, truncated or damaged (${(() => { try { JSON.parse('{"kind": "train", "config": {"mod'); } catch (e) { return (e as Error).message; } return ''; })()})`,
    `${join(bad.foreign, 'result.json')}: not a topiary result (expected an object with "kind" and "config"; an older or foreign schema)`,
  ]);
  const bytes = statSync(file).size;
  assert.ok(bytes < 2e6, `${bytes} bytes`);
  assert.doesNotMatch(readFileSync(file, 'utf8'), /<script[^>]+src=|<link[^>]+href="http/, 'the page loads nothing from the network');

  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(root, 'chromium-')), {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1300, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    const requests: string[] = [];
    page.on('request', (q) => { if (!q.url().startsWith('file:')) requests.push(q.url()); });
    await page.goto(`file://${file}`);
    await page.waitForSelector('body[data-rendered]', { timeout: 60_000 });
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, []);

    // The summary table: one row per run, the numbers of its result.json.
    const rows = await page.$$eval('table.summary tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('th,td')].map((c) => c.textContent ?? '')));
    const header = rows[0];
    const cell = (label: string, col: string) => rows.find((x) => x[0] === label)?.[header.indexOf(col)];
    assert.equal(rows.length, 1 + folders.length);
    for (const method of ['pmp', 'gmp']) {
      for (const sparsity of [0.9, 0.98]) {
        for (const seed of [0, 1]) {
          assert.equal(cell(LABEL(method, sparsity, seed), 'test accuracy'), fmt(accuracy[`${method}_${sparsity}_${seed}`]), `${method} ${sparsity} ${seed}`);
          assert.equal(cell(LABEL(method, sparsity, seed), 'sparsity'), fmt(sparsity));
        }
      }
    }
    assert.equal(cell('dense lenet_300_100/mnist seed 0', 'test accuracy'), '98.12%');
    assert.equal(cell('dense lenet_300_100/mnist seed 0', 'parameters'), '266,610');
    assert.equal(cell('hier-moea lenet5/mnist seed 0', 'hypervolume'), '0.9512');
    assert.equal(cell('hier-moea lenet5/mnist seed 0', 'knee (95.00% sparse)'), '98.71%');
    assert.equal(cell('evo_pop mlp/mnist seed 0', 'mass −50%'), '96.11%');
    const deployed = await page.$$eval('table.deployed td', (tds) => tds.map((t) => t.textContent));
    assert.deepEqual(deployed, ['evo_pop mlp/mnist seed 0', '123,456', '0.4200']);
    const problems = await page.$$eval('.problems li', (lis) => lis.map((l) => l.textContent));
    assert.deepEqual(problems, r.problems);
    const commands = await page.$$eval('pre.command', (ps) => ps.map((p) => p.textContent));
    assert.ok(commands.includes('topiary train --model lenet_300_100 --dataset mnist --epochs 3'));

    // The charts: rendered SVG, marks in the expected numbers.
    const marks: Record<string, { svg: number; line: number; rect: number; symbol: number }> = Object.fromEntries(await page.$$eval('[id^="chart-"]', (els) => els.map((el) => [el.id.slice(6), {
      svg: el.querySelectorAll('svg').length,
      line: el.querySelectorAll('g.mark-line.role-mark path').length,
      rect: el.querySelectorAll('g.mark-rect.role-mark path').length,
      symbol: el.querySelectorAll('g.mark-symbol.role-mark path').length,
    }] as const)));
    const withHistory = 1 + 8 + 1;
    assert.deepEqual(Object.keys(marks), ['loss', 'accuracy', 'layers', 'tradeoff', `fronts-${folders.length - 2}`, `masses-${folders.length - 1}`]);
    for (const [id, m] of Object.entries(marks)) assert.equal(m.svg, 1, `${id}: one SVG`);
    assert.equal(marks.loss.line, withHistory, 'one loss line per run with epochs');
    assert.equal(marks.accuracy.line, 2 * withHistory, 'train and validation lines per run');
    assert.equal(marks.layers.rect, 8 * LAYERS.length, 'one bar per layer of each pruned run');
    assert.equal(marks.tradeoff.symbol, 4, 'one point per method and sparsity (seeds averaged)');
    assert.equal(marks.tradeoff.line, 2, 'one line per method');
    assert.equal(marks[`fronts-${folders.length - 2}`].line, generations.length, 'one front per generation');
    assert.equal(marks[`fronts-${folders.length - 2}`].symbol, generations.reduce((s, g) => s + g.front.length, 0), 'every front point');
    assert.equal(marks[`masses-${folders.length - 1}`].line, 5 + 3, 'one line per population');
    // The pmp points sit at the mean of their seeds.
    const tip = await page.$$eval('#chart-tradeoff g.mark-symbol.role-mark path', (ps) => ps.map((p) => p.getAttribute('aria-label') ?? ''));
    const mean90 = (100 * (accuracy['pmp_0.9_0'] + accuracy['pmp_0.9_1']) / 2).toFixed(2);
    assert.ok(tip.some((t) => t.includes('pmp') && t.includes(mean90)), `no pmp point at ${mean90}: ${tip.join(' | ')}`);

    const shots = join(repoRoot, 'runs', 'test-artifacts');
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'report.png'), fullPage: true });
    assert.ok(statSync(join(shots, 'report.png')).size > 10_000);
  } finally {
    await ctx.close();
  }
});

test('reproduce: the page of a reproduction\'s runs beside its results document', () => {
  const docs = join(root, 'docs');
  mkdirSync(docs);
  assert.equal(writeResultsPage(join(root, 'prune'), join(docs, 'pmp.md')), join(docs, 'pmp.html'));
  const html = readFileSync(join(docs, 'pmp.html'), 'utf8');
  assert.match(html, /<title>topiary: pmp<\/title>/);
  assert.equal((html.match(/<summary>/g) ?? []).length, 8);
});

function topiary(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/topiary.js'), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: dataRoot }, timeout: 180_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('topiary report: good and bad folders; nothing written when no run is left', () => {
  const out = join(root, 'cli.html');
  const r = topiary(['report', join(root, 'prune'), bad.truncated, bad.empty, '--out', out]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, /^report of 8 runs in .*cli\.html \(0\.\d\d MB\); 2 not reported \(above\)\n$/);
  assert.deepEqual(r.stderr.trim().split('\n').map((l) => l.replace(root, '<root>')), [
    'topiary report: <root>/truncated/result.json: not valid JSON, truncated or damaged (' + (() => { try { JSON.parse('{"kind": "train", "config": {"mod'); } catch (e) { return (e as Error).message; } return ''; })() + ')',
    'topiary report: <root>/empty: holds no run (no result.json in it or below it)',
  ]);
  assert.ok(existsSync(out));
  const none = join(root, 'none.html');
  const n = topiary(['report', bad.foreign, join(root, 'missing'), '--out', none]);
  assert.equal(n.status, 2);
  assert.match(n.stderr, /not a topiary result/);
  assert.match(n.stderr, /missing: holds no run/);
  assert.match(n.stderr, /topiary: no run to report in .*; nothing written/);
  assert.ok(!existsSync(none));
});

const present = existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte.gz')) || existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte'));
test('topiary train writes report.html into its run folder and records the command', { skip: !present && `no MNIST under ${dataRoot}` }, () => {
  const out = join(root, 'trained');
  const r = topiary(['train', '--model', 'mlp', '--widths', '32', '--dataset', 'mnist', '--epochs', '2', '--subset', '600', '--threads', '1', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { command: string; testAccuracy: number };
  assert.equal(res.command, `topiary train --model mlp --widths 32 --dataset mnist --epochs 2 --subset 600 --threads 1 --out ${out}`);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(html.includes(fmt(res.testAccuracy)));
  assert.ok(html.includes('id="chart-loss"'));
});
