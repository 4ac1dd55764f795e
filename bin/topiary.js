#!/usr/bin/env node
// The installed package runs the compiled CLI (dist/). A checkout holds src/ and has tsx as a dev
// dependency: there the TypeScript sources run directly, so no build step stands between a clone
// and a run (and a dist/ left over from `npm pack` never shadows newer sources).
import { existsSync } from 'node:fs';

const src = new URL('../src/cli/main.ts', import.meta.url);
const dist = new URL('../dist/cli/main.js', import.meta.url);
let tsx = null;
if (existsSync(src)) {
  try { tsx = await import('tsx/esm/api'); } catch { /* no dev dependencies: fall back to dist/ */ }
}
try {
  if (tsx) {
    tsx.register();
    await import(src.href);
  } else if (existsSync(dist)) {
    await import(dist.href);
  } else {
    process.stderr.write('topiary: the compiled CLI (dist/) is missing: run `npm run build` (or `npm ci` for the dev dependencies)\n');
    process.exitCode = 1;
  }
} catch (e) {
  // The addon did not load (libtorch missing, no build): its one sentence, not a stack.
  if (e?.code !== 'NATIVE_LOAD_ERROR') throw e;
  process.stderr.write(`topiary: ${e.message}\n`);
  process.exitCode = 1;
}
