/**
 * What a user reads: `prune --help` and `evo --help` name the folders their runs go to (not train's
 * runs/train), and a run without a validation split says so instead of printing "best val NaN%".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const dataRoot = process.env.TOPIARY_DATA ?? join(repoRoot, '..', 'shared', 'datasets');
const root = mkdtempSync(join(tmpdir(), 'topiary-help-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const cli = (args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin/topiary.js'), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: dataRoot, COLUMNS: '200' }, timeout: 120_000 });

test('--help names each command\'s own output folder', () => {
  const flat = (s: string) => s.replace(/\s+/g, ' ');
  assert.match(flat(cli(['prune', '--help']).stdout), /--out <dir> output folder \(default: runs\/prune\/<method>_<config hash>\/seed_<seed>\)/);
  assert.match(flat(cli(['evo', '--help']).stdout), /--out <dir> output folder \(default: runs\/evo\)/);
  assert.match(flat(cli(['train', '--help']).stdout), /--out <dir> output folder \(default: "runs\/train"\)/);
});

const present = existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte.gz')) || existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte'));
test('--val-fraction 0: "no validation split", not "best val NaN%"', { skip: !present && `no MNIST under ${dataRoot}` }, () => {
  const r = cli(['train', '--model', 'mlp', '--widths', '16', '--dataset', 'mnist', '--epochs', '1', '--subset', '300', '--val-fraction', '0', '--threads', '1', '--out', join(root, 'noval')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^mlp on mnist: test accuracy \d+\.\d\d% \(no validation split\), \d+ parameters/);
  assert.doesNotMatch(r.stdout, /NaN/);
});
