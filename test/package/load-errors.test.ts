/**
 * When the addon cannot load, one sentence that says what to do, never the dynamic linker's wall:
 * a package folder with no build and no prebuild; a prebuilt addon whose libtorch library is not
 * on this machine (a real shared object, linked by gcc against a stub libc10 that is then removed,
 * so the message is the real dynamic linker's); a file that is not a shared object at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeLoadError } from '../../src/core/errors.js';
import { loadAddon, loadFailureMessage } from '../../src/core/binding.js';

const root = mkdtempSync(join(tmpdir(), 'topiary-load-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

function fakePackage(name: string): { dir: string; prebuilds: string } {
  const dir = join(root, name);
  const prebuilds = join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
  mkdirSync(prebuilds, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name }));
  return { dir, prebuilds };
}

function loadError(dir: string): NativeLoadError {
  try {
    loadAddon(dir);
  } catch (e) {
    assert.ok(e instanceof NativeLoadError, `not a NativeLoadError: ${String(e)}`);
    return e;
  }
  assert.fail('loaded');
}

test('no build and no prebuild: build it with npm run build:native', () => {
  const { dir } = fakePackage('empty');
  const e = loadError(dir);
  assert.match(e.message, /not built/);
  assert.match(e.message, /npm run build:native/);
  assert.match(e.message, /apt-get install libtorch-dev/);
  assert.doesNotMatch(e.message, /\n/);
  assert.equal(e.code, 'NATIVE_LOAD_ERROR');
});

test('a prebuilt addon whose libtorch is missing: which library, and how to install libtorch', { skip: process.platform !== 'linux' && 'needs gcc and ELF' }, () => {
  const { dir, prebuilds } = fakePackage('nolib');
  const stubDir = join(root, 'stub');
  mkdirSync(stubDir);
  writeFileSync(join(stubDir, 'c10.c'), 'int topiary_stub(void) { return 1; }\n');
  writeFileSync(join(stubDir, 'addon.c'), 'int topiary_stub(void);\nint call_stub(void) { return topiary_stub(); }\n');
  const soname = 'libc10.so.99.0';
  let r = spawnSync('gcc', ['-shared', '-fPIC', '-o', join(stubDir, soname), `-Wl,-soname,${soname}`, join(stubDir, 'c10.c')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const addon = join(prebuilds, 'nolib.glibc.node');
  r = spawnSync('gcc', ['-shared', '-fPIC', '-o', addon, join(stubDir, 'addon.c'), join(stubDir, soname)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  rmSync(join(stubDir, soname));
  const e = loadError(dir);
  assert.equal(e.message, `the libtorch addon (${addon}) needs ${soname}, which is not installed: install libtorch with ` +
    '`sudo apt-get install libtorch-dev libopenblas0-pthread` (Debian/Ubuntu), or build the addon against an official libtorch with ' +
    '`LIBTORCH=<folder> npm run build:native`');
  assert.match((e.cause as Error).message, /cannot open shared object file/);
});

test('a file that is not a shared object: rebuild', () => {
  const { dir, prebuilds } = fakePackage('garbage');
  writeFileSync(join(prebuilds, 'garbage.glibc.node'), 'not an ELF file\n');
  const e = loadError(dir);
  assert.match(e.message, /does not match this machine|failed to load/);
  assert.match(e.message, /npm run build:native/);
  assert.doesNotMatch(e.message, /\n/);
});

test('the messages for other linker failures', () => {
  assert.match(loadFailureMessage('/x.node', new Error('libfoo.so.3: cannot open shared object file: No such file or directory')),
    /needs the shared library libfoo\.so\.3, which is not installed; rebuild it .*npm run build:native/);
  assert.match(loadFailureMessage('/x.node', new Error('/x.node: undefined symbol: _ZN3c104impl8GPUTrace')),
    /does not match this machine's libtorch/);
});
