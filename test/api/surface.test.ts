/**
 * The public surface: docs/api-report.md is current (a change to the exports shows in review), every
 * export of the pruning API has a doc comment with an example or a description, and docs/api.md
 * names every one of them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');

test('docs/api-report.md matches the exports of src/index.ts', () => {
  const r = spawnSync(process.execPath, ['scripts/api-report.mjs', '--check'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('every export of src/api has a doc comment, and docs/api.md names it', () => {
  const doc = readFileSync(join(root, 'docs', 'api.md'), 'utf8');
  const index = readFileSync(join(root, 'src', 'api', 'index.ts'), 'utf8');
  const missingDoc: string[] = [], missingRef: string[] = [];
  for (const f of readdirSync(join(root, 'src', 'api')).filter((x) => x.endsWith('.ts') && x !== 'index.ts')) {
    const lines = readFileSync(join(root, 'src', 'api', f), 'utf8').split('\n');
    lines.forEach((l, i) => {
      const m = l.match(/^export (?:async )?(?:function|class|const|interface|type) (\w+)/);
      if (!m) return;
      let j = i - 1;
      while (j >= 0 && lines[j].trim() === '') j--;
      if (!lines[j]?.trim().endsWith('*/')) missingDoc.push(`${f}: ${m[1]}`);
      if (/^export (?:async )?(?:function|class|const)/.test(l) && new RegExp(`\\b${m[1]}\\b`).test(index) && !doc.includes(m[1])) missingRef.push(m[1]);
    });
  }
  assert.deepEqual(missingDoc, [], 'exports without a doc comment');
  assert.deepEqual(missingRef, [], 'values not named in docs/api.md');
});
