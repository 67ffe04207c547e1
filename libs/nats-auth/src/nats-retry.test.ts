/**
 * Transient NATS failures, made real: the nats-server process is frozen (SIGSTOP) for a moment,
 * so requests sent meanwhile time out, as they did on a loaded machine. A retried request gets its
 * answer once the server is back; an error a retry would meet again fails at once.
 */
import { startNatsServer, type StartedNatsServer } from '@gradpool/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, DeliverPolicy, type JetStreamManager, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStatusMessage, openFilteredFeed } from './filtered-feed.js';
import { isTransientNatsError, retryNats } from './nats-retry.js';

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
/** JetStream requests of these tests time out after this long. */
const TIMEOUT_MS = 400;
let dir: string;
let server: StartedNatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gp-nats-retry-'));
  server = await startNatsServer(NATS_SERVER, join(dir, 'js'));
  nc = await connect({ servers: server.url });
  jsm = await nc.jetstreamManager({ timeout: TIMEOUT_MS });
  await jsm.streams.add({ name: 'S', subjects: ['s.>'] });
  const js = nc.jetstream();
  for (let i = 0; i < 5; i++) await js.publish('s.a', new Uint8Array([i]));
  await js.publish('s.b', new Uint8Array([9]));
});
afterAll(async () => {
  await nc?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});


describe('retryNats', () => {
  it('retries a request that timed out while the server was frozen, and returns its answer', async () => {
    const retries: string[] = [];
    const thawed = server.freeze(TIMEOUT_MS + 300);
    const info = await retryNats(() => jsm.streams.info('S'), { onRetry: (n, err) => retries.push(`${n}: ${(err as { code?: string }).code}`) });
    await thawed;
    expect(info.config.name).toBe('S');
    expect(info.state.messages).toBe(6);
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries[0]).toBe('1: TIMEOUT');
  });

  it('fails at once on an error that a retry would meet again', async () => {
    const retries: number[] = [];
    const err = await retryNats(() => jsm.streams.info('NOPE'), { onRetry: (n) => retries.push(n) }).catch((e: unknown) => e);
    expect(String(err)).toMatch(/stream not found/i);
    expect(isTransientNatsError(err)).toBe(false);
    expect(retries).toEqual([]);
  });

  it('gives up after its attempts with the last timeout', async () => {
    const retries: number[] = [];
    // Frozen until both attempts have timed out, however late a loaded machine makes the second
    // (a fixed 3 × TIMEOUT_MS thawed the server under it in a landing CI, and the retry got its answer).
    let gaveUp!: () => void;
    const thawed = server.freezeUntil(new Promise<void>((r) => (gaveUp = r)));
    const err = await retryNats(() => jsm.streams.info('S'), { attempts: 2, firstDelayMs: 50, onRetry: (n) => retries.push(n) }).catch((e: unknown) => e);
    gaveUp();
    await thawed;
    expect(isTransientNatsError(err)).toBe(true);
    expect((err as { code?: string }).code).toBe('TIMEOUT');
    expect(retries).toEqual([1]);
    expect((await jsm.streams.info('S')).config.name).toBe('S');
  });
});

describe('openFilteredFeed', () => {
  it('retries a consumer create that timed out with a new consumer: all of the filter is delivered, and no consumer is left behind', async () => {
    const retries: number[] = [];
    const thawed = server.freeze(TIMEOUT_MS + 300);
    const feed = await openFilteredFeed(nc, 'S', 's.a', DeliverPolicy.All, { timeoutMs: TIMEOUT_MS, onRetry: (n) => retries.push(n) });
    await thawed;
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(feed.pending).toBe(5);
    const got: number[] = [];
    for await (const m of feed.sub) {
      if (isStatusMessage(nc, m)) continue;
      got.push(m.data[0]);
      if (got.length === 5) break;
    }
    expect(got).toEqual([0, 1, 2, 3, 4]);
    await feed.close();
    // The timed-out attempt's consumer was made once the server ran again, then deleted.
    const deadline = Date.now() + 10_000;
    let left = -1;
    while (Date.now() < deadline) {
      left = (await jsm.consumers.list('S').next()).length;
      if (left === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toBe(0);
  });
});
