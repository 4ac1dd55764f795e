/**
 * A real redis-server for the queue tests: 127.0.0.1, a free port, its own data folder, no
 * snapshots and no append-only file (`--save '' --appendonly no`). CI installs the Debian
 * package; a missing binary fails the tests (nothing is skipped).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisOptions {
  /** Serve TLS only (`--port 0 --tls-port`), with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
  /** `--requirepass`. */
  password?: string;
}

export interface RedisServer {
  port: number;
  /** redis://127.0.0.1:<port>/<db>, or rediss://:<password>@... with TLS and a password */
  url(db?: number): string;
  /** Stops the server (SIGTERM, then waits for it to exit). */
  stop(): Promise<void>;
  /** Stops it and starts it again on the same port (empty: nothing is persisted). */
  restart(): Promise<void>;
}

export const REDIS_BIN = existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : 'redis-server';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something answers on the port (redis-server answers PING only when ready, but it listens only when ready too). */
async function waitForPort(port: number, child: ChildProcess, ms = 10000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = createConnection({ port, host: '127.0.0.1' }, () => { c.end(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`redis-server did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRedis(o: RedisOptions = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'topiary-redis-'));
  const port = await freePort();
  let child: ChildProcess;
  let log = '';
  const launch = async () => {
    const listen = o.tls
      ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', o.tls.cert, '--tls-key-file', o.tls.key, '--tls-ca-cert-file', o.tls.cert, '--tls-auth-clients', 'no']
      : ['--port', String(port)];
    const auth = o.password ? ['--requirepass', o.password] : [];
    child = spawn(REDIS_BIN, [...listen, ...auth, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (e) => reject(new Error(`cannot start ${REDIS_BIN}: ${e.message} (install the redis-server package)`)));
    });
    try {
      await waitForPort(port, child);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${log}`);
    }
  };
  const halt = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await gone;
  };
  await launch();
  return {
    port,
    url: (db = 0) => `${o.tls ? 'rediss' : 'redis'}://${o.password ? `:${encodeURIComponent(o.password)}@` : ''}127.0.0.1:${port}/${db}`,
    stop: async () => { await halt(); rmSync(dir, { recursive: true, force: true }); },
    restart: async () => { await halt(); await launch(); },
  };
}
