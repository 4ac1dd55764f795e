#!/usr/bin/env node
// Builds the libtorch addon with node-gyp. Checks for libtorch first so that a missing
// library is one clear sentence, not a wall of compiler errors.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const check = spawnSync(process.execPath, [join(root, 'scripts/torch-paths.mjs'), 'check'], { stdio: ['ignore', 'ignore', 'inherit'] });
if (check.status !== 0) process.exit(1);

function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const require = createRequire(import.meta.url);
  try { return require.resolve('node-gyp/bin/node-gyp.js'); } catch { /* fall through */ }
  const npmDir = join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  if (existsSync(npmDir)) return npmDir;
  for (const p of ['/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js', '/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js', '/usr/share/nodejs/node-gyp/bin/node-gyp.js']) {
    if (existsSync(p)) return p;
  }
  console.error('topiary: node-gyp was not found (it ships with npm). Install it with `npm install -g node-gyp`.');
  process.exit(1);
}

const jobs = process.env.JOBS ?? '2';
const args = [nodeGyp(), 'rebuild', `--jobs=${jobs}`];
if (process.env.npm_config_nodedir) args.push(`--nodedir=${process.env.npm_config_nodedir}`);
else if (existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
console.error('topiary: building the libtorch addon (a minute or two)...');
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
