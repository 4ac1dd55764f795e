#!/usr/bin/env node
// The prebuilt addon that ships in the package: prebuilds/<platform>-<arch>/topiary.glibc.node,
// built by prebuildify (N-API, stripped) against Debian's libtorch-dev, and found at run time by
// node-gyp-build (src/core/binding.ts). `npm pack` runs this through `prepack`.
//
// prebuildify runs `node-gyp rebuild` in its working folder, which would wipe the checkout's
// build/ (the addon the tests and the CLI load). So it builds in a staging copy of the native
// sources, and only prebuilds/ comes back. When build/Release already holds an addon built from
// the current sources against Debian's libtorch, that binary is the same build: it is stripped and
// copied instead (seconds instead of a compile). TOPIARY_PREBUILD_FRESH=1 forces the staged build
// (not TOPIARY_PREBUILD: node-gyp-build reads that one as a folder to load the addon from).
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const platformDir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const target = join(platformDir, 'topiary.glibc.node');
const SOURCES = ['native', 'binding.gyp', 'scripts/torch-paths.mjs'];

const say = (m) => process.stderr.write(`topiary prebuild: ${m}\n`);
function fail(m) {
  process.stderr.write(`\ntopiary prebuild: ${m}\n\n`);
  process.exit(1);
}

// Debian's libtorch, never $LIBTORCH: the shipped binary links the system library.
const env = { ...process.env };
delete env.LIBTORCH;
const paths = spawnSync(process.execPath, [join(root, 'scripts/torch-paths.mjs'), 'json'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (paths.status !== 0) process.exit(1);
const libdir = JSON.parse(paths.stdout).libdirs[0];

function newestSource() {
  let newest = 0;
  const walk = (p) => {
    const s = statSync(p);
    if (s.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
    else newest = Math.max(newest, s.mtimeMs);
  };
  for (const s of SOURCES) if (existsSync(join(root, s))) walk(join(root, s));
  return newest;
}

/** build/Release's addon when it is current and links Debian's libtorch (the makefile names the -L folder). */
function reusableBuild() {
  const file = join(root, 'build/Release/topiary_native.node');
  const mk = join(root, 'build/topiary_native.target.mk');
  if (process.env.TOPIARY_PREBUILD_FRESH === '1' || !existsSync(file) || !existsSync(mk)) return null;
  if (statSync(file).mtimeMs < newestSource()) return null;
  if (!readFileSync(mk, 'utf8').includes(`-L${libdir} `)) return null;
  return file;
}

function strip(file) {
  const r = spawnSync('strip', ['--strip-all', file], { stdio: 'inherit' });
  if (r.status !== 0) fail(`strip failed on ${file} (install binutils)`);
}

function nodeGyp() {
  const require = createRequire(import.meta.url);
  const candidates = [process.env.npm_config_node_gyp,
    (() => { try { return require.resolve('node-gyp/bin/node-gyp.js'); } catch { return undefined; } })(),
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js', '/usr/share/nodejs/node-gyp/bin/node-gyp.js'];
  const found = candidates.find((p) => p && existsSync(p));
  if (!found) fail('node-gyp was not found (it ships with npm). Install it with `npm install -g node-gyp`.');
  return found;
}

async function stagedBuild() {
  const stage = mkdtempSync(join(tmpdir(), 'topiary-prebuild-'));
  try {
    for (const s of SOURCES) cpSync(join(root, s), join(stage, s), { recursive: true });
    copyFileSync(join(root, 'package.json'), join(stage, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(stage, 'node_modules'), 'dir');
    // prebuildify hands process.env to node-gyp: Debian's libtorch, two make jobs, and the system's
    // node headers when they are there (else node-gyp would download them).
    delete process.env.LIBTORCH;
    process.env.JOBS = process.env.JOBS ?? '2';
    if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) process.env.npm_config_nodedir = '/usr';
    // prebuildify spawns node-gyp as a command: a wrapper runs npm's node-gyp with this node.
    const gyp = join(stage, 'node-gyp.sh');
    writeFileSync(gyp, `#!/bin/sh\nexec "${process.execPath}" "${nodeGyp()}" "$@"\n`);
    chmodSync(gyp, 0o755);
    const prebuildify = createRequire(import.meta.url)('prebuildify');
    say('building the addon with prebuildify (N-API) against Debian\'s libtorch in a staging copy (a minute or two)...');
    await new Promise((resolve, reject) => prebuildify({ cwd: stage, napi: true, strip: true, tagLibc: true, nodeGyp: gyp },
      (err) => (err ? reject(err) : resolve())));
    const built = join(stage, 'prebuilds', `${process.platform}-${process.arch}`, 'topiary.glibc.node');
    if (!existsSync(built)) fail(`prebuildify wrote no ${built}`);
    copyFileSync(built, target);
  } catch (e) {
    fail(`the addon build failed: ${e.message}`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (process.platform !== 'linux' || process.arch !== 'x64') fail(`prebuilt addons are built for linux-x64 only (this is ${process.platform}-${process.arch}); use \`npm run build:native\``);
rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
mkdirSync(platformDir, { recursive: true });
const reuse = reusableBuild();
if (reuse) {
  copyFileSync(reuse, target);
  strip(target);
  say(`${target} from ${reuse} (current, links ${libdir}/libtorch_cpu)`);
} else {
  await stagedBuild();
  say(`${target} built`);
}
