/**
 * Attack: a 3 MB train-images-idx3-ubyte.gz whose header declares MNIST's 60000 x 28 x 28 images
 * but which inflates to 3 GB (47 gzip members of 64 MiB of zeros after the real header). It used to
 * be inflated whole (6.4 GB resident) before its size was checked. Now the inflation stops as soon
 * as it passes the size the header declares, and headers declaring absurd sizes are refused before
 * any inflation. Peak memory is measured in a child process (its maxRSS) and must stay under 300 MB.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DatasetError } from '../../src/core/errors.js';
import { parseIdx } from '../../src/data/idx.js';
import { assertOneLine, dataRoot, repoRoot, skipNoMnist, topiary } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'topiary-bomb-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

function header(dims: number[]): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h.writeUInt32BE(0x0800 | dims.length, 0);
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return h;
}

const CHUNK = 64 << 20;
/** The IDX header, then `members` x 64 MiB of zeros, as concatenated gzip members (gunzip reads them all). */
function bomb(dims: number[], members: number): Buffer {
  const zeros = gzipSync(Buffer.alloc(CHUNK), { level: 9 });
  const first = gzipSync(Buffer.concat([header(dims), Buffer.alloc(CHUNK)]), { level: 9 });
  return Buffer.concat([first, ...Array.from({ length: members - 1 }, () => zeros)]);
}

const file = join(root, 'train-images-idx3-ubyte.gz');
const bytes = bomb([60000, 28, 28], 47);
writeFileSync(file, bytes);

test('the bomb (3 GB inflated) is refused with peak RSS under 300 MB', () => {
  assert.ok(bytes.length < 4e6, `bomb is ${bytes.length} bytes`);
  const script = `
    import { readIdx } from ${JSON.stringify(join(repoRoot, 'src/data/idx.ts'))};
    let msg = 'accepted';
    try { readIdx(${JSON.stringify(file)}, 'images'); } catch (e) { msg = e.constructor.name + ': ' + e.message; }
    process.stdout.write(JSON.stringify({ msg, maxRssKb: process.resourceUsage().maxRSS }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const { msg, maxRssKb } = JSON.parse(r.stdout) as { msg: string; maxRssKb: number };
  assert.match(msg, /^DatasetError: .*train-images-idx3-ubyte\.gz: inflates past the 47040016 bytes its IDX header declares \(shape \[60000, 28, 28\]\)/);
  const mb = maxRssKb / 1024;
  console.log(`# gzip bomb (${(bytes.length / 1e6).toFixed(1)} MB, inflates to ${(47 * CHUNK / 1e9).toFixed(2)} GB): refused, peak RSS ${mb.toFixed(0)} MB`);
  assert.ok(mb < 300, `peak RSS ${mb.toFixed(0)} MB`);
});

test('train on a data folder holding the bomb: one line naming the file, nothing written', { skip: skipNoMnist }, () => {
  const data = join(root, 'data', 'mnist');
  mkdirSync(data, { recursive: true });
  copyFileSync(file, join(data, 'train-images-idx3-ubyte.gz'));
  for (const f of ['train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']) copyFileSync(join(dataRoot, 'mnist', f), join(data, f));
  const out = join(root, 'out');
  const r = topiary(['train', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--batch-size', '64', '--lr', '0.1', '--data-dir', join(root, 'data'), '--out', out]);
  assertOneLine(r, [/train-images-idx3-ubyte\.gz: inflates past the 47040016 bytes/], 'bomb via the CLI');
  assert.throws(() => statSync(join(out, 'run.json')), /ENOENT/, 'no run.json for a run that never started');
});

test('headers that declare absurd sizes are refused before inflating', () => {
  const throwsData = (b: Uint8Array, re: RegExp) => assert.throws(() => parseIdx(b, 'x.gz', 'images'), (e: unknown) => e instanceof DatasetError && re.test(e.message));
  // 4294967295 x 4294967295 x 1: not a safe integer product / far beyond the cap.
  throwsData(gzipSync(Buffer.concat([header([0xffffffff, 0xffffffff, 1]), Buffer.alloc(16)])), /bad dimensions|more than the/);
  // 2 GB declared: over the 1 GiB cap.
  throwsData(gzipSync(Buffer.concat([header([2000, 1000, 1000]), Buffer.alloc(16)])), /more than the 1073\.7 MB an IDX file may hold/);
  // 500 MB declared in a 1 KB gzip: no deflate stream holds that.
  throwsData(gzipSync(Buffer.concat([header([500, 1000, 1000]), Buffer.alloc(16)])), /more than \d+ bytes of gzip can hold/);
  // Uncompressed: the same caps.
  assert.throws(() => parseIdx(Buffer.concat([header([2000, 1000, 1000]), Buffer.alloc(16)]), 'x', 'images'), /more than the 1073\.7 MB/);
});
