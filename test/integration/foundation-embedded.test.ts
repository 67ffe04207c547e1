/**
 * The demo's fallbacks: an embedded Postgres (PGlite over its socket server, one connection)
 * and a nats-server spawned from PATH. The coordinator migrates, serves and tracks a worker on them.
 */
import { startCoordinator, toConfig, type CoordinatorHandle } from '@gradpool/coordinator';
import { findExecutable, startEmbeddedPostgres, startNatsServer } from '@gradpool/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register, TestSession, waitFor, workerClient, type ApiResponse } from './foundation-helpers.js';

const ADMIN = 'embedded-admin-key-0123456789';
let pg: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
let nats: Awaited<ReturnType<typeof startNatsServer>>;
let coord: CoordinatorHandle;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gp-embedded-'));
  const bin = findExecutable('nats-server', process.env.PATH ?? '');
  if (!bin) throw new Error('nats-server is not installed');
  [pg, nats] = await Promise.all([startEmbeddedPostgres(undefined), startNatsServer(bin, join(dir, 'nats'))]);
  coord = await startCoordinator(
    toConfig({
      DATABASE_URL: pg.url,
      GRADPOOL_DB_POOL_MAX: '1',
      NATS_URL: nats.url,
      GRADPOOL_HTTP_HOST: '127.0.0.1',
      GRADPOOL_HTTP_PORT: '0',
      GRADPOOL_GRPC_HOST: '127.0.0.1',
      GRADPOOL_GRPC_PORT: '0',
      GRADPOOL_ADMIN_KEY: ADMIN,
      GRADPOOL_HEARTBEAT_INTERVAL_MS: '200',
      LOG_LEVEL: 'silent',
    }),
  );
}, 120_000);

afterAll(async () => {
  await coord?.close();
  await nats?.close();
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('embedded services', () => {
  it('run the coordinator: migrations, API, registration and a session online', async () => {
    const api = async (method: string, path: string, body?: unknown): Promise<ApiResponse> => {
      const res = await fetch(`${coord.httpUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: await res.json() };
    };
    expect((await api('GET', '/readyz')).body.checks).toEqual({ database: 'ok', nats: 'ok', scheduling: 'ok' });
    const g = await api('POST', '/v1/groups', { name: 'embedded' });
    expect(g.status).toBe(201);
    const t = await api('POST', `/v1/groups/${g.body.id}/tokens`, { maxUses: 1 });
    const client = workerClient(coord.grpcAddress);
    try {
      const reg = await register(client, { joinToken: t.body.token, workerName: 'embedded-worker' });
      const s = new TestSession(client, reg.workerId, reg.sessionSecret);
      await s.next('accepted');
      s.startHeartbeats(100);
      await waitFor(async () => (await api('GET', `/v1/workers/${reg.workerId}`)).body.status === 'online', 'online on PGlite');
      s.drain('done');
      await s.next('drainAck');
      expect((await api('GET', `/v1/workers/${reg.workerId}`)).body.status).toBe('drained');
    } finally {
      client.close();
    }
  });
});
