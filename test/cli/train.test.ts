/**
 * `topiary train` as a user runs it (node bin/topiary.js): invalid options are refused before any
 * work, with a non-zero exit and a message naming the field, and nothing is written; a valid recipe
 * (with a flag overriding it) trains on a small MNIST subset and writes result.json with the
 * documented fields; --json prints the same result as parseable JSON; --stop-after-epochs + resume.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/core/errors.js';
import { mergeConfig } from '../../src/cli/common.js';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { dataRoot, repoRoot } from '../nn/util.js';

const present = existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte.gz')) || existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte'));
const skip = !present && `real MNIST not found under ${dataRoot} (set TOPIARY_DATA to a folder holding mnist/)`;

function topiary(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/topiary.js'), 'train', ...args], {
    cwd: repoRoot, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: dataRoot }, timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without waiting: the invalid cases start together, so their start-up times overlap. */
function topiaryAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [join(repoRoot, 'bin/topiary.js'), 'train', ...args], { cwd: repoRoot, env: { ...process.env, TOPIARY_DATA: dataRoot } });
    let stdout = '', stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    p.on('close', (status) => done({ status, stdout, stderr }));
  });
}

const root = mkdtempSync(join(tmpdir(), 'topiary-cli-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const base = ['--dataset', 'mnist', '--epochs', '1', '--batch-size', '64', '--lr', '0.1'];
const RECIPE_OK = 'model: mlp\ndataset: mnist\nepochs: 1\nbatchSize: 64\nlr: 0.1\n';

/** Spawned cases: arguments (a recipe file written first when given) and what the one-line error must say. */
const bad: { name: string; args: string[]; recipe?: string; expect: RegExp[] }[] = [
  { name: 'unknown model', args: ['--model', 'resnet7', ...base], expect: [/model: unknown model \(known: mlp, lenet_300_100, lenet5/] },
  { name: 'negative learning rate', args: ['--model', 'mlp', ...base, '--lr', '-0.1'], expect: [/lr: Too small/] },
  { name: 'batch size 0', args: ['--model', 'mlp', ...base, '--batch-size', '0'], expect: [/batchSize: Too small/] },
  { name: 'not a number', args: ['--model', 'mlp', ...base, '--momentum', 'high'], expect: [/--momentum/, /expected a number, got 'high'/] },
  { name: 'recipe: a misspelled field', args: [], recipe: `${RECIPE_OK}lerningRate: 0.3\n`, expect: [/Unrecognized key: "lerningRate"/] },
  { name: 'recipe: unreadable file', args: ['--recipe', '/nonexistent/recipe.yaml'], expect: [/recipe \/nonexistent\/recipe\.yaml: cannot read \(ENOENT\)/] },
];

const badRuns = new Map<number, Promise<{ status: number | null; stdout: string; stderr: string }>>();
test.before(() => {
  for (const [i, c] of bad.entries()) {
    const args = [...c.args, '--out', join(root, `bad${i}`)];
    if (c.recipe !== undefined) {
      const f = join(root, `bad${i}.yaml`);
      writeFileSync(f, c.recipe);
      args.push('--recipe', f);
    }
    badRuns.set(i, topiaryAsync(args));
  }
});

for (const [i, c] of bad.entries()) {
  test(`invalid: ${c.name} -> non-zero exit, the field named, nothing written`, async () => {
    const r = await badRuns.get(i)!;
    assert.notEqual(r.status, 0, `exit status ${r.status}`);
    assert.ok(r.status !== null, 'exited (not killed)');
    for (const re of c.expect) assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /internal error|    at /, 'one clear line, no stack');
    assert.equal(r.stdout, '');
    assert.ok(!existsSync(join(root, `bad${i}`)), 'no output folder');
  });
}

/** In-process, the same path the command takes (recipe, flags over it, one schema): more cases, no start-up cost. */
const parse = (opts: Record<string, unknown>) => validate(TrainConfig, mergeConfig(opts), 'training options');
const issuesOf = (opts: Record<string, unknown>): string[] => {
  try {
    parse(opts);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `a ConfigError, got ${String(e)}`);
    return e.issues.map((x) => x.path);
  }
  assert.fail('expected a ConfigError');
};
const good = { model: 'mlp', dataset: 'mnist', epochs: 1, batchSize: 64, lr: 0.1 };

test('in-process: every bad field is named at once, by its path', () => {
  assert.deepEqual(issuesOf({ ...good, model: 'nope', dataset: 'imagenet', epochs: 0 }).sort(), ['dataset', 'epochs', 'model']);
  assert.deepEqual(issuesOf({ ...good, optimizer: 'lion' }), ['optimizer']);
  assert.deepEqual(issuesOf({ ...good, nesterov: true }), ['nesterov']);
  assert.deepEqual(issuesOf({ ...good, epochs: 2, warmupEpochs: 2 }), ['warmupEpochs']);
  assert.deepEqual(issuesOf({ ...good, labelSmoothing: 1.5, valFraction: 0.9 }).sort(), ['labelSmoothing', 'valFraction']);
  assert.deepEqual(issuesOf({ ...good, widths: [512, 0] }), ['widths.1']);
  assert.deepEqual(issuesOf({ ...good, rotation: -5 }), ['augment.rotation'], 'augmentation flags land under augment');
  assert.throws(() => parse({ ...good, momentum: 'high' }), /momentum: Invalid input: expected number, received string/);
  const c = parse({ ...good, seed: 3 });
  assert.equal(c.optimizer, 'sgd');
  assert.equal(c.schedule, 'constant');
  assert.deepEqual(c.augment, { rotation: 0, translation: 0, cropPadding: 0, flip: false });
  assert.deepEqual(issuesOf({ ...good, recipe: recipeWith('augment:\n  interpolation: bicubic\n') }), ['augment.interpolation']);
  assert.equal(parse({ ...good, recipe: recipeWith('augment:\n  rotation: 10\n  interpolation: nearest\n') }).augment.interpolation, 'nearest');
});

function recipeWith(text: string): string {
  const p = join(root, `aug-${text.length}.yaml`);
  writeFileSync(p, `${RECIPE_OK}${text}`);
  return p;
}

test('in-process: recipes are read as YAML mappings; flags override them; errors name the file', () => {
  const f = (name: string, text: string) => { const p = join(root, name); writeFileSync(p, text); return p; };
  const r = f('r1.yaml', `${RECIPE_OK}augment:\n  rotation: 10\n  flip: true\n`);
  const c = parse({ recipe: r, lr: 0.2, translation: 0.1, out: 'ignored', json: true });
  assert.equal(c.lr, 0.2);
  assert.equal(c.epochs, 1);
  assert.deepEqual(c.augment, { rotation: 10, translation: 0.1, cropPadding: 0, flip: true }, 'augment flags merge into the recipe\'s augment');
  assert.throws(() => parse({ recipe: f('r2.yaml', `${RECIPE_OK}augment:\n  rotation: -5\n`) }), /augment\.rotation: Too small/);
  assert.throws(() => parse({ recipe: f('r3.yaml', 'model: [mlp\n') }), /r3\.yaml: not valid YAML/);
  assert.throws(() => parse({ recipe: f('r4.yaml', '- mlp\n- mnist\n') }), /r4\.yaml: expected a mapping of fields/);
  assert.throws(() => parse({ recipe: f('r5.yaml', '') }), /r5\.yaml: expected a mapping of fields/);
  assert.throws(() => parse({ recipe: f('r6.yaml', `${RECIPE_OK}out: runs/x\n`) }), /Unrecognized key: "out"/);
});

const RESULT_FIELDS = ['kind', 'model', 'dataset', 'config', 'seed', 'completed', 'resumedFrom', 'finalValAccuracy', 'bestValAccuracy', 'bestEpoch',
  'testAccuracy', 'testLoss', 'params', 'nonzeroParams', 'flops', 'nonzeroFlops', 'layers', 'secondsPerEpoch', 'wallSeconds', 'loaderShare', 'history', 'versions'];

test('a valid recipe (a flag overriding it) trains on a subset and writes result.json with the documented fields; --json parses', { skip }, () => {
  const recipe = join(root, 'ok.yaml');
  writeFileSync(recipe, 'model: lenet_300_100\ndataset: mnist\nepochs: 5\nbatchSize: 100\nlr: 0.1\nmomentum: 0.9\nschedule: cosine\nsubset: 2000\nseed: 4\nthreads: 1\n');
  const out = join(root, 'ok');
  const r = topiary(['--recipe', recipe, '--epochs', '2', '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const printed = JSON.parse(r.stdout);
  const saved = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
  // The run page step adds the command line to result.json after the result is printed.
  const { command, ...savedResult } = saved;
  assert.equal(command, `topiary train --recipe ${recipe} --epochs 2 --out ${out} --json`);
  assert.deepEqual(printed, savedResult, '--json prints what result.json holds');
  for (const f of RESULT_FIELDS) assert.ok(f in saved, `result.json lacks '${f}'`);
  assert.equal(saved.model, 'lenet_300_100');
  assert.equal(saved.config.epochs, 2, 'the flag overrides the recipe');
  assert.equal(saved.config.subset, 2000);
  assert.equal(saved.config.optimizer, 'sgd', 'defaults are filled in');
  assert.equal(saved.seed, 4);
  assert.equal(saved.completed, true);
  assert.equal(saved.params, 266_610);
  assert.equal(saved.flops, 266_200);
  assert.equal(saved.history.length, 2);
  assert.equal(saved.secondsPerEpoch.length, 2);
  assert.ok(saved.testAccuracy > 0.8 && saved.testAccuracy <= 1, `test accuracy ${saved.testAccuracy}`);
  assert.ok(saved.bestValAccuracy >= saved.finalValAccuracy);
  assert.deepEqual(saved.layers.map((l: { name: string }) => l.name), ['1', '3', '5']);
  assert.equal(typeof saved.versions.libtorch, 'string');
  assert.equal(saved.versions.threads, 1);
  assert.deepEqual(readdirSync(out).sort(), ['checkpoints', 'model.safetensors', 'report.html', 'result.json', 'run.json']);
});

test('--stop-after-epochs stops with a checkpoint; the same command resumes and finishes', { skip }, () => {
  const out = join(root, 'resume');
  const args = ['--model', 'mlp', '--widths', '64', '--dataset', 'mnist', '--epochs', '2', '--batch-size', '100', '--lr', '0.05', '--subset', '1000', '--threads', '1', '--out', out];
  const a = topiary([...args, '--stop-after-epochs', '1']);
  assert.equal(a.status, 0, a.stderr);
  assert.match(a.stdout, /stopped after epoch 1; resume with the same --out/);
  assert.equal(JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')).completed, false);
  const b = topiary(args);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /mlp on mnist: test accuracy \d+\.\d\d% \(best val \d+\.\d\d%\), 50890 parameters/);
  const saved = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
  assert.equal(saved.completed, true);
  assert.equal(saved.resumedFrom, 0);
  assert.equal(saved.history.length, 2);
});

test('the same --out with other settings is refused, naming the field, and the finished run is kept', { skip }, () => {
  const out = join(root, 'resume');
  const before = readFileSync(join(out, 'result.json'), 'utf8');
  const r = topiary(['--model', 'mlp', '--widths', '64', '--dataset', 'mnist', '--epochs', '2', '--batch-size', '100', '--lr', '0.1', '--subset', '1000', '--threads', '1', '--out', out]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /holds another run \(lr: 0\.05 there, 0\.1 here\)/);
  assert.equal(readFileSync(join(out, 'result.json'), 'utf8'), before);
});

test('reproduce: --budget takes smoke, reduced or full; evo-pop has no reduced budget; bad --workers and HIER_MOEA_ONLY are refused; all before any work', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin/topiary.js'), ...args], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: dataRoot }, timeout: 120_000 });
  const bad = cli(['reproduce', 'pmp', '--budget', 'huge']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--budget.*huge.*smoke, reduced, full/s);
  const evo = cli(['reproduce', 'evo-pop', '--budget', 'reduced', '--out', join(root, 'no-runs'), '--doc', join(root, 'no-doc.md')]);
  assert.notEqual(evo.status, 0);
  assert.match(evo.stderr, /--budget: evo-pop has the smoke and full budgets only/);
  assert.equal(existsSync(join(root, 'no-doc.md')), false);
  assert.equal(existsSync(join(root, 'no-runs')), false);
  const workers = cli(['reproduce', 'pmp', '--workers', '2', '--out', join(root, 'no-runs'), '--doc', join(root, 'no-doc.md')]);
  assert.notEqual(workers.status, 0);
  assert.match(workers.stderr, /--workers: only hier-moea evaluates in worker threads, not pmp/);
  const zero = cli(['reproduce', 'hier-moea', '--workers', '0', '--out', join(root, 'no-runs'), '--doc', join(root, 'no-doc.md')]);
  assert.notEqual(zero.status, 0);
  assert.match(zero.stderr, /--workers: must be a positive integer, got 0/);
  const only = spawnSync(process.execPath, [join(repoRoot, 'bin/topiary.js'), 'reproduce', 'hier-moea', '--out', join(root, 'no-runs'), '--doc', join(root, 'no-doc.md')],
    { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: dataRoot, HIER_MOEA_ONLY: 'vgg' }, timeout: 120_000 });
  assert.notEqual(only.status, 0);
  assert.match(only.stderr, /HIER_MOEA_ONLY: unknown model 'vgg' \(known: lenet5, resnet20\)/);
  for (const p of ['no-doc.md', 'no-runs']) assert.equal(existsSync(join(root, p)), false, `${p} was not written`);
});
