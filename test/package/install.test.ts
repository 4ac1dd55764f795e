/**
 * The package as a user gets it: `npm pack` (prepack: dist/ by tsc, the prebuilt addon by
 * scripts/prebuild.mjs), then `npm install --offline ./topiary-x.y.z.tgz` into an empty folder.
 * Offline, npm cannot fetch the registry's package documents, so the empty folder starts with a
 * lockfile made of the project's own (runtime entries, versions and integrities): every tarball
 * then comes from the npm cache that `npm ci` filled, and npm still checks that each locked version
 * satisfies the ranges in the packed package.json. Then: `npx topiary --help` runs the compiled
 * CLI; `import { tensor, createModel } from 'topiary'` computes with the prebuilt addon; a
 * TypeScript file compiles with `tsc --strict` against the package's declarations; and the install
 * prints no install-script warning at all (topiary has no install script, and bullmq, whose
 * msgpackr-extract has one, is an optional peer dependency left out); without bullmq, `topiary worker`
 * says in one line what to install.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Not from test/nn/util.ts: that loads the addon, and packing must not need a local build.
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const root = mkdtempSync(join(tmpdir(), 'topiary-pack-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

function run(cmd: string, args: string[], o: SpawnSyncOptions = {}): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 240_000, ...o, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', ...(o.env ?? {}) } });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

test('npm pack and an offline install from the tarball give a working CLI, import and types', { timeout: 280_000 }, () => {
  const packDir = join(root, 'pack');
  mkdirSync(packDir);
  const pack = run('npm', ['pack', '--pack-destination', packDir], { cwd: repoRoot });
  assert.equal(pack.status, 0, `npm pack failed:\n${pack.out.slice(-3000)}`);
  const tgzName = readdirSync(packDir).find((f) => f.endsWith('.tgz'));
  assert.ok(tgzName, `no tarball in ${packDir}`);
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
  assert.equal(tgzName, `topiary-${pkg.version}.tgz`);
  const tgz = join(packDir, tgzName);

  // What is in it: compiled JS + declarations, the prebuilt addon, the native sources and their build script, recipes.
  const files = run('tar', ['-tzf', tgz]).out.trim().split('\n').map((f) => f.replace(/^package\//, ''));
  for (const f of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'bin/topiary.js', 'prebuilds/linux-x64/topiary.glibc.node',
    'native/src/core.cc', 'binding.gyp', 'scripts/build-native.mjs', 'scripts/torch-paths.mjs']) {
    assert.ok(files.includes(f), `${f} is missing from the tarball`);
  }
  const allowed = /^(dist\/.*\.(js|d\.ts)|bin\/topiary\.js|prebuilds\/linux-x64\/topiary\.glibc\.node|native\/.*|binding\.gyp|scripts\/(build-native|torch-paths)\.mjs|recipes\/[\w.-]+\.yaml|package\.json|README\.md|LICENSE)$/;
  assert.deepEqual(files.filter((f) => !allowed.test(f)), [], 'files in the tarball outside the files list');
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('build/')), 'sources, tests or a local build in the tarball');
  const packed = JSON.parse(run('tar', ['-xOzf', tgz, 'package/package.json']).out) as { scripts: Record<string, string>; dependencies: Record<string, string>; gypfile?: boolean;
    peerDependencies?: Record<string, string>; peerDependenciesMeta?: Record<string, { optional?: boolean }> };
  for (const s of ['preinstall', 'install', 'postinstall']) assert.equal(packed.scripts[s], undefined, `the package has a ${s} script`);
  assert.equal(packed.gypfile, false, 'gypfile must be false, else npm runs node-gyp rebuild on install');
  assert.equal(packed.dependencies.tsx, undefined, 'tsx is a runtime dependency');
  // The prebuilt addon links Debian's libtorch.
  mkdirSync(join(root, 'x'));
  assert.equal(run('tar', ['-xzf', tgz, '-C', join(root, 'x'), 'package/prebuilds/linux-x64/topiary.glibc.node']).status, 0);
  const ldd = run('ldd', [join(root, 'x/package/prebuilds/linux-x64/topiary.glibc.node')]).out;
  assert.match(ldd, /libtorch_cpu\.so[.\d]* => \/usr\/lib\/[\w-]+\/libtorch_cpu\.so/);
  assert.doesNotMatch(ldd, /not found/);

  // An empty folder, a lockfile of the project's runtime entries (plus @types/node for the TypeScript check).
  const app = join(root, 'app');
  mkdirSync(app);
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; version: string }> };
  const types = lock.packages['node_modules/@types/node']!;
  const packages: Record<string, unknown> = { '': { name: 'app', devDependencies: { '@types/node': types.version } } };
  // With `resolved` (the project's lock leaves it out for the default registry) npm takes each
  // tarball from the cache by its integrity; without it, it would want the registry's documents.
  const registry = run('npm', ['config', 'get', 'registry']).out.trim().replace(/\/$/, '');
  for (const [k, v] of Object.entries(lock.packages)) {
    if (!k.startsWith('node_modules/') || (v.dev && k !== 'node_modules/@types/node' && k !== 'node_modules/undici-types')) continue;
    const name = k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const resolved = (v as { resolved?: string }).resolved ?? `${registry}/${name}/-/${name.split('/').pop()}-${v.version}.tgz`;
    packages[k] = { ...v, dev: undefined, resolved };
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', devDependencies: { '@types/node': types.version } }));
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }));
  const inst = run('npm', ['install', '--offline', `./${join('..', 'pack', tgzName)}`], { cwd: app });
  assert.equal(inst.status, 0, `npm install --offline failed:\n${inst.out.slice(-3000)}`);
  // No install script anywhere in the tree: bullmq (whose msgpackr-extract has one) and ioredis are
  // optional peer dependencies, for the queue only, so a plain install leaves them out.
  const scriptWarnings = inst.out.split('\n').filter((l) => /install.?script|allowScripts/i.test(l));
  assert.deepEqual(scriptWarnings, [], `npm warned about install scripts:\n${scriptWarnings.join('\n')}`);
  for (const d of ['bullmq', 'ioredis']) {
    assert.equal(packed.dependencies[d], undefined, `${d} is a runtime dependency`);
    assert.ok(packed.peerDependencies?.[d] && packed.peerDependenciesMeta?.[d]?.optional === true, `${d} is not an optional peer dependency`);
    assert.equal(existsSync(join(app, 'node_modules', d)), false, `${d} was installed`);
  }
  const installed = join(app, 'node_modules', 'topiary');
  assert.ok(!existsSync(join(installed, 'build')), 'npm built the addon on install');
  assert.ok(!existsSync(join(installed, 'src')), 'sources were installed');
  assert.equal(existsSync(join(app, 'node_modules', 'tsx')), false, 'tsx was installed as a runtime dependency');

  // The CLI (compiled code: there is no src/ to run).
  const help = run('npx', ['--offline', '--no-install', 'topiary', '--help'], { cwd: app });
  assert.equal(help.status, 0, help.out);
  assert.match(help.out, /Usage: topiary/);
  for (const c of ['train', 'prune', 'reproduce', 'search', 'evo']) assert.match(help.out, new RegExp(`\\n\\s+${c}\\b`), `--help lists no ${c}`);

  // Without bullmq the queue features say what to install, in one line, and fail.
  const worker = run('npx', ['--offline', '--no-install', 'topiary', 'worker', '--queue', 'redis://127.0.0.1:1'], { cwd: app });
  assert.notEqual(worker.status, 0, worker.out);
  assert.equal(worker.out.split('\n')[0], 'topiary: the queue needs bullmq and ioredis: npm install bullmq ioredis', worker.out);
  assert.doesNotMatch(worker.out, /internal error|ERR_MODULE_NOT_FOUND|Cannot find/, worker.out);

  // TypeScript against the package's declarations, strict; then the compiled file runs on the prebuilt addon.
  writeFileSync(join(app, 'use.ts'), [
    "import { tensor, createModel, hierMoea, populationModel, type ModelConfig, type Tensor } from 'topiary';",
    "import { createRequire } from 'node:module';",
    'const t: Tensor = tensor([[1, 2], [3, 4]]);',
    'const shape: number[] = t.shape;',
    "const config: ModelConfig = { inputShape: [1, 28, 28], numClasses: 10, widths: [16] };",
    "const m = createModel('mlp', config);",
    'const params = m.namedParameters().reduce((s, [, p]) => s + p.numel, 0);',
    "const addon = createRequire(import.meta.url)('node-gyp-build').resolve('node_modules/topiary') as string;",
    "const methods = [typeof hierMoea, typeof populationModel];",
    'console.log(JSON.stringify({ shape, sum: t.sum().item(), params, addon, methods }));',
  ].join('\n'));
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'], outDir: 'out' }, files: ['use.ts'] }));
  const tsc = run(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', '.', '--strict'], { cwd: app });
  assert.equal(tsc.status, 0, `tsc --strict against the package failed:\n${tsc.out}`);
  const use = run(process.execPath, ['out/use.js'], { cwd: app });
  assert.equal(use.status, 0, use.out);
  const r = JSON.parse(use.out.trim().split('\n').pop()!) as { shape: number[]; sum: number; params: number; addon: string; methods: string[] };
  assert.deepEqual(r.methods, ['function', 'function'], 'EVO-POP and HIER-MOEA from the public entry');
  assert.deepEqual(r.shape, [2, 2]);
  assert.equal(r.sum, 10);
  assert.equal(r.params, 784 * 16 + 16 + 16 * 10 + 10);
  assert.equal(r.addon, join(installed, 'prebuilds/linux-x64/topiary.glibc.node'));

  // The report page from the installed package: vega's and vega-lite's browser builds are found in node_modules.
  const run1 = join(app, 'run1');
  mkdirSync(run1);
  writeFileSync(join(run1, 'result.json'), JSON.stringify({ kind: 'train', model: 'mlp', dataset: 'mnist', config: { model: 'mlp', dataset: 'mnist' }, testAccuracy: 0.97,
    history: [{ epoch: 0, lr: 0.1, trainLoss: 0.3, trainAccuracy: 0.9, seconds: 1, extra: {} }] }));
  const rep = run('npx', ['--offline', '--no-install', 'topiary', 'report', 'run1'], { cwd: app });
  assert.equal(rep.status, 0, rep.out);
  const html = readFileSync(join(run1, 'report.html'), 'utf8');
  assert.ok(html.length > 500_000 && html.includes('97.00%'), 'the page holds the run and the inlined chart libraries');
});
