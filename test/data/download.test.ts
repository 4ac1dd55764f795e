import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DatasetError } from '../../src/core/errors.js';
import { downloadFile, ensureFiles, extractFiles, readTar, verifyFiles } from '../../src/data/download.js';
import { cifar10, type CifarDatasetSpec, type IdxDatasetSpec, mnist } from '../../src/data/sources.js';
import { cifarBytes, cifarRecord, fakeFetch, forbidNetwork, idxBytes, listAll, md5, pattern, tarBytes, tempDir } from './fixtures.js';

forbidNetwork();

async function rejectsDataset(p: Promise<unknown>, file: string, ...res: RegExp[]): Promise<DatasetError> {
  let caught: unknown;
  await p.catch((err) => (caught = err));
  assert.ok(caught instanceof DatasetError, `expected DatasetError, got ${String(caught)}`);
  assert.ok(caught.message.includes(file), `message should name ${file}: ${caught.message}`);
  for (const re of res) assert.match(caught.message, re);
  return caught;
}

const payload = pattern(5000, 13, 1);
const url = 'https://example.invalid/f.gz';

test('download: good bytes land under the final name, verified, nothing else left', async () => {
  const dir = join(tempDir(), 'not', 'yet');
  const dest = join(dir, 'f.gz');
  const { fetch, calls } = fakeFetch({ [url]: payload });
  const progress: [number, number | undefined][] = [];
  await downloadFile(url, dest, md5(payload), { fetch, onProgress: (_f, got, total) => progress.push([got, total]) });
  assert.deepEqual(calls, [url]);
  assert.deepEqual(new Uint8Array(readFileSync(dest)), payload);
  assert.deepEqual(listAll(dir), ['f.gz']);
  assert.deepEqual(progress.at(-1), [5000, 5000]);
  assert.ok(progress.length >= 5, 'streamed in chunks');
});

test('download: bad bytes → DatasetError with both md5s, no final or temporary file', async () => {
  const dir = tempDir();
  const dest = join(dir, 'f.gz');
  const expected = md5(Uint8Array.of(1, 2, 3));
  const { fetch } = fakeFetch({ [url]: payload });
  await rejectsDataset(downloadFile(url, dest, expected, { fetch }), dest, new RegExp(`expected md5 ${expected}, got ${md5(payload)}`));
  assert.deepEqual(listAll(dir), []);
});

test('download: HTTP error, offline, and a stream that breaks off leave nothing behind', async () => {
  const dir = tempDir();
  const dest = join(dir, 'f.gz');
  const notFound = fakeFetch({});
  await rejectsDataset(downloadFile(url, dest, undefined, { fetch: notFound.fetch }), dest, /answered HTTP 404 Not Found/);
  const offline = async (): Promise<Response> => {
    throw new TypeError('fetch failed');
  };
  const err = await rejectsDataset(downloadFile(url, dest, undefined, { fetch: offline }), dest, /downloading .* failed \(fetch failed\)/);
  assert.ok(err.cause instanceof TypeError);
  let sent = false;
  const breaking = async (): Promise<Response> =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(ctrl) {
          if (sent) ctrl.error(new Error('connection reset'));
          else ctrl.enqueue(payload);
          sent = true;
        },
      }),
    );
  await rejectsDataset(downloadFile(url, dest, undefined, { fetch: breaking }), dest, /broke off \(connection reset\)/);
  assert.deepEqual(listAll(dir), []);
});

test('tar: ustar names, prefixes, GNU long names, directories', () => {
  const long = 'd/' + 'x'.repeat(120) + '.bin';
  const tar = tarBytes([
    { name: 'top/', data: new Uint8Array(0), type: '5' },
    { name: './top/a.bin', data: pattern(700) },
    { name: 'b.bin', prefix: 'top/sub', data: pattern(512, 3) },
    { name: long, data: pattern(3, 9) },
    { name: 'empty', data: new Uint8Array(0) },
  ]);
  const entries = [...readTar(tar, 'x.tar')];
  assert.deepEqual(entries.map((e) => [e.name, e.type, e.data.length]), [
    ['top/', '5', 0],
    ['top/a.bin', '0', 700],
    ['top/sub/b.bin', '0', 512],
    [long, '0', 3],
    ['empty', '0', 0],
  ]);
  assert.deepEqual(entries[1].data, pattern(700));
  assert.deepEqual(entries[2].data, pattern(512, 3));
  assert.deepEqual(entries[3].data, pattern(3, 9));
});

test('tar: bad header checksum and truncation are DatasetErrors naming the archive', () => {
  const tar = tarBytes([{ name: 'a.bin', data: pattern(1000) }]);
  const bad = Uint8Array.from(tar);
  bad[0] ^= 1;
  assert.throws(() => [...readTar(bad, 'x.tar')], (e: unknown) => e instanceof DatasetError && /x\.tar: bad tar header checksum at offset 0/.test(e.message));
  assert.throws(() => [...readTar(tar.subarray(0, 1000), 'y.tar')], (e: unknown) => e instanceof DatasetError && /y\.tar: truncated tar/.test(e.message));
});

test('extract: wanted members only, md5-checked, missing members reported', async () => {
  const dir = tempDir();
  const archive = join(dir, 'a.tar.gz');
  writeFileSync(archive, gzipSync(tarBytes([{ name: 'f/one.bin', data: pattern(10) }, { name: 'f/two.bin', data: pattern(20) }])));
  await extractFiles(archive, [{ member: 'f/two.bin', dest: join(dir, 'out', 'two.bin'), md5: md5(pattern(20)) }]);
  assert.deepEqual(listAll(dir), ['a.tar.gz', 'out/two.bin']);
  const bad = join(dir, 'out', 'one.bin');
  await rejectsDataset(extractFiles(archive, [{ member: 'f/one.bin', dest: bad, md5: md5(pattern(11)) }]), bad, /checksum mismatch/);
  await rejectsDataset(extractFiles(archive, [{ member: 'f/three.bin', dest: bad }]), archive, /archive lacks f\/three\.bin/);
  assert.deepEqual(listAll(dir), ['a.tar.gz', 'out/two.bin']);
});

/** A CIFAR-10 spec whose archive and md5s are generated, served from a fake URL. */
function fakeCifar10(): { spec: CifarDatasetSpec; tgz: Uint8Array; bins: Record<string, Uint8Array> } {
  const bins: Record<string, Uint8Array> = {};
  for (const [i, f] of [...cifar10.splits.train, ...cifar10.splits.test].entries()) {
    bins[f.name] = cifarBytes([cifarRecord(2 * i, i), cifarRecord(2 * i + 1, 9 - i)], 1);
  }
  const tgz = gzipSync(tarBytes([
    { name: 'cifar-10-batches-bin/', data: new Uint8Array(0), type: '5' },
    ...Object.entries(bins).map(([name, data]) => ({ name: `cifar-10-batches-bin/${name}`, data })),
    { name: 'cifar-10-batches-bin/readme.html', data: pattern(50) },
  ]));
  const withMd5 = (fs: readonly { name: string }[]) => fs.map((f) => ({ name: f.name, md5: md5(bins[f.name]) }));
  const spec: CifarDatasetSpec = {
    ...cifar10,
    archive: { ...cifar10.archive, url: 'https://fake/cifar-10-binary.tar.gz', md5: md5(tgz) },
    splits: { train: withMd5(cifar10.splits.train), test: withMd5(cifar10.splits.test) },
  };
  return { spec, tgz, bins };
}

test('ensureFiles: CIFAR archive is fetched once, extracted, checked, and removed', async () => {
  const root = tempDir();
  const dir = join(root, 'cifar-10-batches-bin');
  const { spec, tgz, bins } = fakeCifar10();
  const { fetch, calls } = fakeFetch({ [spec.archive.url]: tgz });
  await ensureFiles(spec, dir, undefined, { fetch });
  assert.deepEqual(calls, [spec.archive.url]);
  assert.deepEqual(listAll(root), Object.keys(bins).map((n) => `cifar-10-batches-bin/${n}`).sort());
  for (const [name, bytes] of Object.entries(bins)) assert.deepEqual(new Uint8Array(readFileSync(join(dir, name))), bytes);
  await verifyFiles(spec, dir);
  await ensureFiles(spec, dir, undefined, { fetch }); // all present: no second download
  assert.equal(calls.length, 1);
});

test('ensureFiles: an archive placed by hand is used and kept; a wrong one is refused', async () => {
  const root = tempDir();
  const { spec, tgz } = fakeCifar10();
  writeFileSync(join(root, 'cifar-10-binary.tar.gz'), tgz);
  await ensureFiles(spec, join(root, 'cifar-10-batches-bin'), [spec.splits.test[0]], { fetch: fakeFetch({}).fetch });
  assert.deepEqual(listAll(root), ['cifar-10-batches-bin/test_batch.bin', 'cifar-10-binary.tar.gz']);
  const other = tempDir();
  const archive = join(other, 'cifar-10-binary.tar.gz');
  writeFileSync(archive, tgz.subarray(0, 100));
  await rejectsDataset(ensureFiles(spec, join(other, 'cifar-10-batches-bin'), undefined, { fetch: fakeFetch({}).fetch }), archive,
    new RegExp(`expected md5 ${spec.archive.md5}, got ${md5(tgz.subarray(0, 100))}`));
});

test('ensureFiles: a CIFAR archive with a bad md5 leaves nothing behind', async () => {
  const root = tempDir();
  const { spec, tgz } = fakeCifar10();
  const corrupt = Uint8Array.from(tgz);
  corrupt[corrupt.length >> 1] ^= 0xff;
  const archive = join(root, 'cifar-10-binary.tar.gz');
  await rejectsDataset(ensureFiles(spec, join(root, 'cifar-10-batches-bin'), undefined, { fetch: fakeFetch({ [spec.archive.url]: corrupt }).fetch }),
    archive, new RegExp(`expected md5 ${spec.archive.md5}, got ${md5(corrupt)}`));
  assert.deepEqual(listAll(root), []);
});

test('ensureFiles: IDX files come one by one; download:false names what is missing', async () => {
  const root = tempDir();
  const dir = join(root, 'mnist');
  const bytes: Record<string, Uint8Array> = {};
  const files = [mnist.splits.test.images, mnist.splits.test.labels];
  bytes[files[0].name] = gzipSync(idxBytes([1, 28, 28], pattern(784)));
  bytes[files[1].name] = gzipSync(idxBytes([1], Uint8Array.of(4)));
  const spec: IdxDatasetSpec = {
    ...mnist,
    baseUrl: 'https://fake/mnist/',
    splits: { ...mnist.splits, test: { images: { name: files[0].name, md5: md5(bytes[files[0].name]) }, labels: { name: files[1].name, md5: md5(bytes[files[1].name]) } } },
  };
  await rejectsDataset(ensureFiles(spec, dir, undefined, { download: false }), dir, /mnist files missing: train-images-idx3-ubyte\.gz, train-labels-idx1-ubyte\.gz, t10k-images/);
  const { fetch, calls } = fakeFetch(Object.fromEntries(Object.entries(bytes).map(([n, b]) => [spec.baseUrl + n, b])));
  await ensureFiles(spec, dir, [spec.splits.test.images, spec.splits.test.labels], { fetch });
  assert.deepEqual(calls, files.map((f) => spec.baseUrl + f.name));
  assert.deepEqual(listAll(root), ['mnist/t10k-images-idx3-ubyte.gz', 'mnist/t10k-labels-idx1-ubyte.gz']);
  // A decompressed copy counts as present.
  mkdirSync(join(root, 'raw'));
  writeFileSync(join(root, 'raw', 't10k-labels-idx1-ubyte'), idxBytes([1], Uint8Array.of(4)));
  await ensureFiles(spec, join(root, 'raw'), [spec.splits.test.labels], { download: false });
  assert.ok(!existsSync(join(root, 'raw', 't10k-labels-idx1-ubyte.gz')));
});
