/**
 * The queue's address: a Redis URL (`redis://[user:password@]host[:port][/db]`, or `rediss://` for
 * TLS) turned into BullMQ's connection options, checked before any work so that a bad URL or an
 * unreachable server is one clear line. Passwords never appear in messages (`display`).
 */
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError, TopiaryError } from '../core/errors.js';

/** A queue that cannot be reached, a job that failed for good, an artifact that fails its hash. */
export class QueueError extends TopiaryError {
  override readonly code = 'QUEUE_ERROR';
}

/** BullMQ key prefix and the two queues: whole runs of a reproduction, and HIER-MOEA candidates. */
export const PREFIX = 'topiary';
export const RUNS_QUEUE = 'runs';
export const EVAL_QUEUE = 'eval';

export interface QueueAddress {
  /** ioredis options (BullMQ passes them on). */
  options: RedisOptions;
  /** The URL with the password replaced by '***', for messages. */
  display: string;
}

export function parseQueueUrl(url: string, flag = '--queue'): QueueAddress {
  const usage = `expected redis://[user:password@]host[:port][/db] or rediss://... (TLS)`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`${flag}: ${usage}, got '${url}'`, [{ path: 'queue', message: 'not a URL' }]);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new ConfigError(`${flag}: ${usage}, got the scheme '${u.protocol.replace(/:$/, '')}'`, [{ path: 'queue', message: 'not a Redis URL' }]);
  }
  if (!u.hostname) throw new ConfigError(`${flag}: ${usage}, got no host in '${url}'`, [{ path: 'queue', message: 'no host' }]);
  const port = u.port ? Number(u.port) : 6379;
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d+$/.test(path)) throw new ConfigError(`${flag}: the database must be a number (redis://host:port/0), got '/${path}'`, [{ path: 'queue', message: 'bad database' }]);
  const db = path === '' ? 0 : Number(path);
  if (u.search || u.hash) throw new ConfigError(`${flag}: no query or fragment is understood, got '${u.search}${u.hash}'`, [{ path: 'queue', message: 'query or fragment' }]);
  const shown = new URL(url);
  if (shown.password) shown.password = '***';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const options: RedisOptions = {
    host, port, db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    // TLS checks the server's certificate against the system's CAs (NODE_EXTRA_CA_CERTS adds one); SNI only for names.
    ...(u.protocol === 'rediss:' ? { tls: isIP(host) ? {} : { servername: host } } : {}),
  };
  return { options, display: shown.toString() };
}

/**
 * One PING with a short timeout and no retries: an address nobody answers at, a wrong password or
 * a TLS mismatch fails here with one line instead of BullMQ reconnecting forever.
 */
export async function checkReachable(a: QueueAddress, timeoutMs = 5000): Promise<void> {
  const client = new Redis({ ...a.options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs, enableOfflineQueue: false });
  let lastError: Error | undefined;
  client.on('error', (e: Error) => { lastError = e; });
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    const err = lastError ?? (e as Error);
    const why = (err as NodeJS.ErrnoException).code ?? err.message.split('\n')[0];
    throw new QueueError(`cannot reach the queue at ${a.display}: ${why}`, { cause: err });
  } finally {
    client.disconnect();
  }
}

/** Options for long-lived clients: commands wait while Redis restarts, reconnecting every 2 s at most. */
export function redisOptions(a: QueueAddress): RedisOptions {
  return { ...a.options, maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(200 * times, 2000) };
}

/** The same for BullMQ's Queue, Worker and QueueEvents (its option type is its own). */
export function bullConnection(a: QueueAddress): ConnectionOptions {
  return redisOptions(a) as ConnectionOptions;
}
