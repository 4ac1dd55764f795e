/**
 * A queue behind TLS and a password (`rediss://:password@host:port/db`): a real redis-server with
 * `--tls-port` and `--requirepass`, its self-signed certificate (test/fixtures/redis-tls-*.pem,
 * for 127.0.0.1) trusted through Node's NODE_EXTRA_CA_CERTS. A wrong password or an untrusted
 * certificate is one line naming the queue, never the password.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { startRedis, type RedisServer } from './redis.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const cert = join(repo, 'test', 'fixtures', 'redis-tls-cert.pem');
let redis: RedisServer;

before(async () => { redis = await startRedis({ tls: { cert, key: join(repo, 'test', 'fixtures', 'redis-tls-key.pem') }, password: 'p@ss word' }); });
after(async () => { await redis?.stop(); });

const status = (url: string, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(repo, 'bin', 'topiary.js'), 'queue', 'status', '--queue', url], { encoding: 'utf8', env: { ...process.env, ...env } });

test('rediss:// with a password reaches the queue; a wrong password or an untrusted certificate is one line', () => {
  const url = redis.url(2);
  assert.match(url, /^rediss:\/\/:p%40ss%20word@127\.0\.0\.1:\d+\/2$/);
  const ok = status(url, { NODE_EXTRA_CA_CERTS: cert });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, `queue rediss://:***@127.0.0.1:${redis.port}/2\nruns: 0 waiting, 0 active, 0 delayed, 0 done, 0 failed\ncandidates: 0 waiting, 0 active, 0 delayed, 0 done, 0 failed\n`);
  const wrong = status(url.replace('p%40ss%20word', 'nope'), { NODE_EXTRA_CA_CERTS: cert });
  assert.equal(wrong.status, 1);
  assert.equal(wrong.stderr, `topiary: cannot reach the queue at rediss://:***@127.0.0.1:${redis.port}/2: WRONGPASS invalid username-password pair or user is disabled.\n(run with --verbose for the stack)\n`);
  const untrusted = status(url);
  assert.equal(untrusted.status, 1);
  assert.equal(untrusted.stderr, `topiary: cannot reach the queue at rediss://:***@127.0.0.1:${redis.port}/2: DEPTH_ZERO_SELF_SIGNED_CERT\n(run with --verbose for the stack)\n`);
  assert.ok(!`${ok.stdout}${wrong.stderr}${untrusted.stderr}`.includes('p@ss'));
});
