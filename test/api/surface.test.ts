/**
 * The public surface: API Extractor's report (etc/topiary.api.md) is current (a change to the exports
 * shows in review), TypeDoc builds the reference without errors, every
 * export of the pruning API has a doc comment with an example or a description, and docs/api.md
 * names every one of them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');

const bin = (p: string) => join(root, 'node_modules', p);

test('etc/topiary.api.md (API Extractor) matches the declarations of src/index.ts', () => {
  // Inside the repository (.cache/ is ignored) so that API Extractor finds its package.json.
  mkdirSync(join(root, '.cache'), { recursive: true });
  const tmp = mkdtempSync(join(root, '.cache', 'api-'));
  try {
    // Declarations into a temporary folder (dist/ is left alone), then API Extractor over them,
    // not in --local mode: a changed public surface fails here until the report is committed.
    const d = spawnSync(process.execPath, [bin('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--emitDeclarationOnly', '--outDir', join(tmp, 'd')], { cwd: root, encoding: 'utf8' });
    assert.equal(d.status, 0, d.stdout + d.stderr);
    const config = join(tmp, 'api-extractor.json');
    writeFileSync(config, JSON.stringify({ extends: join(root, 'api-extractor.json'), projectFolder: root, mainEntryPointFilePath: join(tmp, 'd', 'index.d.ts') }));
    const r = spawnSync(process.execPath, [bin('@microsoft/api-extractor/bin/api-extractor'), 'run', '-c', config], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, `the public API changed: run \`npm run api:report\` and commit etc/topiary.api.md\n${r.stdout}${r.stderr}`);
    const report = readFileSync(join(root, 'etc', 'topiary.api.md'), 'utf8');
    for (const name of ['exportOnnx', 'importOnnx', 'shrink', 'magnitude', 'hierMoea', 'trace']) assert.match(report, new RegExp(`export function ${name}\\b`), name);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('npm run docs (TypeDoc) builds the reference from src/index.ts without errors', () => {
  const out = mkdtempSync(join(tmpdir(), 'topiary-typedoc-'));
  try {
    const r = spawnSync(process.execPath, [bin('typedoc/bin/typedoc'), '--out', out, '--treatWarningsAsErrors'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const fn = readFileSync(join(out, 'functions', 'exportOnnx.html'), 'utf8');
    assert.match(fn, /Trace <code>model<\/code> \(eval mode\) and write it as ONNX/, 'exportOnnx\'s page carries its doc comment');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
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
