/**
 * Generators for tiny dataset files in the real on-disk formats (IDX, CIFAR binary, ustar), and
 * a fake fetch. Not a test file itself (no `.test.ts`), so the runner does not pick it up.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** A fresh temporary folder, removed when the test file ends. */
export function tempDir(prefix = 'topiary-data-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every file under dir, hidden ones included, as relative paths (sorted). */
export function listAll(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath ?? d.path, d.name).slice(dir.length + 1))
    .sort();
}

export const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

/** Deterministic bytes: value i is (i * mul + add) mod 256, so any misplaced byte shows. */
export function pattern(n: number, mul = 7, add = 3): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * mul + add) & 0xff);
}

/** An IDX uint8 file: magic 0x0000 08 <ndims>, big-endian dims, then the data. */
export function idxBytes(shape: number[], data: Uint8Array, magic = 0x0800 | shape.length): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic);
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * shape.length);
  return out;
}

export interface CifarRecord {
  label: number;
  coarse?: number;
  pixels: Uint8Array; // 3072
}

/** CIFAR binary records; with `coarse` set on records, CIFAR-100's two label bytes (coarse first). */
export function cifarBytes(records: CifarRecord[], labelBytes: 1 | 2): Uint8Array {
  const size = labelBytes + 3072;
  const out = new Uint8Array(records.length * size);
  records.forEach((r, i) => {
    if (labelBytes === 2) {
      out[i * size] = r.coarse ?? 0;
      out[i * size + 1] = r.label;
    } else out[i * size] = r.label;
    out.set(r.pixels, i * size + labelBytes);
  });
  return out;
}

/** A record whose pixels are distinct per record, channel and position (mod 256). */
export function cifarRecord(i: number, label: number, coarse?: number): CifarRecord {
  return { label, coarse, pixels: pattern(3072, 5 + 2 * i, 11 * i) };
}

function tarHeader(name: string, size: number, type: string, prefix = ''): Uint8Array {
  const h = new Uint8Array(512);
  const put = (text: string, at: number) => h.set(new TextEncoder().encode(text), at);
  put(name, 0);
  put('0000644\0', 100);
  put('0000000\0', 108);
  put('0000000\0', 116);
  put(size.toString(8).padStart(11, '0') + '\0', 124);
  put('00000000000\0', 136);
  put(type, 156);
  put('ustar\0', 257);
  put('00', 263);
  put(prefix, 345);
  h.fill(0x20, 148, 156);
  const sum = h.reduce((s, b) => s + b, 0);
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

/** A ustar archive. Names over 100 bytes use a GNU 'L' record, as GNU tar writes them. */
export function tarBytes(entries: { name: string; data: Uint8Array; prefix?: string; type?: string }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const pad = (n: number) => new Uint8Array((512 - (n % 512)) % 512);
  for (const e of entries) {
    if (e.name.length > 100) {
      const long = new TextEncoder().encode(e.name + '\0');
      parts.push(tarHeader('././@LongLink', long.length, 'L'), long, pad(long.length));
    }
    parts.push(tarHeader(e.name.slice(0, 100), e.data.length, e.type ?? '0', e.prefix), e.data, pad(e.data.length));
  }
  parts.push(new Uint8Array(1024));
  return new Uint8Array(Buffer.concat(parts));
}

/** A fetch that serves fixed bytes per URL (404 otherwise) and records what was asked. */
export function fakeFetch(files: Record<string, Uint8Array>): { fetch: (url: string) => Promise<Response>; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    fetch: async (url: string) => {
      calls.push(url);
      const body = files[url];
      if (body === undefined) return new Response('not found', { status: 404, statusText: 'Not Found' });
      // Served in small chunks, so the streaming path is exercised, not one big write.
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < body.length; i += 1000) chunks.push(body.subarray(i, i + 1000));
      const stream = new ReadableStream<Uint8Array>({
        pull(ctrl) {
          const c = chunks.shift();
          if (c) ctrl.enqueue(c);
          else ctrl.close();
        },
      });
      return new Response(stream, { headers: { 'content-length': String(body.length) } });
    },
  };
}

/** Any real network access from a test is a bug: make the global fetch throw. */
export function forbidNetwork(): void {
  globalThis.fetch = async (input: unknown) => {
    throw new Error(`test tried the network: ${String(input)}`);
  };
}
