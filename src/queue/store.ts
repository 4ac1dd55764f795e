/**
 * Where model files and masks go between machines: a Store keyed by relative paths, every object
 * checked by its sha256 when read back. FsStore is a shared file system path (`--store <dir>`: NFS,
 * a mounted bucket); an object store needs only these five methods. RedisStore keeps small blobs
 * in the queue's own Redis (a search's evaluation context when no --store is given).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { ConfigError } from '../core/errors.js';
import { QueueError } from './connection.js';

export interface StoredArtifact { key: string; sha256: string; size: number }

export interface Store {
  /** For messages: the folder, bucket or server. */
  readonly where: string;
  /** Stores the bytes under `key`; readers never see part of them. */
  putBytes(key: string, bytes: Uint8Array): Promise<StoredArtifact>;
  putFile(key: string, file: string): Promise<StoredArtifact>;
  /** The bytes under `key`, refused (naming `what`) when missing or when their sha256 is not `sha256`. */
  getBytes(key: string, sha256: string, what: string): Promise<Uint8Array>;
  /** getBytes, then written to `dest` (atomically). */
  getFile(key: string, sha256: string, dest: string, what: string): Promise<void>;
  has(key: string): Promise<boolean>;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Keys are relative paths of plain names: nothing can escape the store's root. */
export function checkKey(key: string): void {
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(key) || key.split('/').some((p) => p === '.' || p === '..')) {
    throw new ConfigError(`store key '${key}': expected a relative path of plain names (letters, digits, . _ -)`, [{ path: 'key', message: 'bad key' }]);
  }
}

function verified(bytes: Uint8Array, want: string, key: string, what: string, where: string): Uint8Array {
  const got = sha256(bytes);
  if (got !== want) {
    throw new QueueError(`${what}: the store's ${key} (in ${where}) has sha256 ${got.slice(0, 16)}..., the job recorded ${want.slice(0, 16)}...; refusing the corrupted artifact`);
  }
  return bytes;
}

/** Writes through a temporary name in the same folder, then renames. */
export function writeAtomic(dest: string, bytes: Uint8Array | string): void {
  mkdirSync(dirname(dest), { recursive: true });
  const tmp = `${dest}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, dest);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export class FsStore implements Store {
  readonly where: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.where = this.root;
    try {
      mkdirSync(this.root, { recursive: true });
    } catch (e) {
      throw new ConfigError(`--store: cannot create ${root} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, [{ path: 'store', message: 'not writable' }]);
    }
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, key);
  }

  async putBytes(key: string, bytes: Uint8Array): Promise<StoredArtifact> {
    writeAtomic(this.path(key), bytes);
    return { key, sha256: sha256(bytes), size: bytes.length };
  }

  async putFile(key: string, file: string): Promise<StoredArtifact> {
    return this.putBytes(key, readFileSync(file));
  }

  async getBytes(key: string, want: string, what: string): Promise<Uint8Array> {
    const p = this.path(key);
    if (!existsSync(p)) throw new QueueError(`${what}: ${key} is not in the store ${this.where} (is --store the same folder on every machine?)`);
    return verified(readFileSync(p), want, key, what, this.where);
  }

  async getFile(key: string, want: string, dest: string, what: string): Promise<void> {
    writeAtomic(dest, await this.getBytes(key, want, what));
  }

  async has(key: string): Promise<boolean> {
    return existsSync(this.path(key));
  }
}

/** Blobs as Redis strings under `<prefix>:store:<key>`, expiring after `ttlSeconds` (default a week). */
export class RedisStore implements Store {
  readonly where: string;

  constructor(private readonly client: Redis, where: string, private readonly prefix = 'topiary', private readonly ttlSeconds = 7 * 24 * 3600) {
    this.where = where;
  }

  private k(key: string): string {
    checkKey(key);
    return `${this.prefix}:store:${key}`;
  }

  async putBytes(key: string, bytes: Uint8Array): Promise<StoredArtifact> {
    await this.client.set(this.k(key), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'EX', this.ttlSeconds);
    return { key, sha256: sha256(bytes), size: bytes.length };
  }

  async putFile(key: string, file: string): Promise<StoredArtifact> {
    return this.putBytes(key, readFileSync(file));
  }

  async getBytes(key: string, want: string, what: string): Promise<Uint8Array> {
    const b = await this.client.getBuffer(this.k(key));
    if (!b) throw new QueueError(`${what}: ${key} is not in the store ${this.where} (expired, or Redis lost it)`);
    return verified(b, want, key, what, this.where);
  }

  async getFile(key: string, want: string, dest: string, what: string): Promise<void> {
    writeAtomic(dest, await this.getBytes(key, want, what));
  }

  async has(key: string): Promise<boolean> {
    return (await this.client.exists(this.k(key))) === 1;
  }
}
