/**
 * `topiary evo` with attention heads: bad options are refused before any work, with the field named,
 * a non-zero exit and nothing written (heads on a model without attention, an unknown kind, a patch
 * size that does not divide the image).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataRoot, repoRoot } from '../nn/util.js';

const evo = (args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin/topiary.js'), 'evo', ...args],
  { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: dataRoot }, timeout: 120_000 });

test('topiary evo refuses bad head options naming the field, writing nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evo-heads-cli-'));
  try {
    const cases: [string[], RegExp][] = [
      [['--model', 'mlp', '--dataset', 'mnist', '--populations', 'heads'], /populations: 'mlp' has no attention heads/],
      [['--model', 'vit_tiny', '--dataset', 'mnist', '--populations', 'heds'], /populations\.0: /],
      [['--model', 'vit_tiny', '--dataset', 'mnist', '--populations', 'filters'], /populations: 'vit_tiny' has no filters/],
      [['--model', 'vit_tiny', '--dataset', 'cifar10'], /patchSize 7 does not divide the image size 32x32/],
    ];
    for (const [args, want] of cases) {
      const out = join(dir, 'run');
      const r = evo([...args, '--out', out]);
      assert.notEqual(r.status, 0, `${args.join(' ')}: exit status`);
      assert.match(r.stderr, want, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(!existsSync(out), `${args.join(' ')}: nothing written`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
