import { randomBytes } from 'node:crypto';
import { startNatsServer, TEST_NATS_URL, type StartedNatsServer } from '@gradpool/testing';
import { connect, NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardIntegrityError, ShardNotFoundError } from './errors.js';
import { encodeShard, sha256Hex } from './shard.codec.js';
import { ShardStore } from './shard-store.js';
import { ShardCache } from './shard-cache.js';
import { ShardReader } from './shard-reader.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('ShardStore (real nats-server JetStream)', () => {
  let nc: NatsConnection;
  let store: ShardStore;
  const bucket = `gp_shards_test_${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    nc = await connect({ servers: TEST_NATS_URL });
    store = await ShardStore.open(nc, { bucket });
  });
  afterAll(async () => {
    await store?.destroy();
    await nc?.close();
  });

  const shard = (seed: number, count = 100) =>
    encodeShard(
      { count, shape: [28, 28], normalisation: 'scale' },
      Float32Array.from({ length: count * 784 }, (_, i) => ((i * 31 + seed) % 255) / 255),
      Int32Array.from({ length: count }, (_, i) => (i + seed) % 10),
    );

  it('stores a shard once under its sha256 and returns the same bytes', async () => {
    const bytes = shard(1);
    const first = await store.put(bytes);
    expect(first).toEqual({ sha256: sha256Hex(bytes), stored: true });
    const again = await store.put(Uint8Array.from(bytes));
    expect(again).toEqual({ sha256: first.sha256, stored: false });
    expect(await store.get(first.sha256)).toEqual(bytes);
    expect(await store.has(first.sha256)).toBe(true);
    // Written in the standard object-store layout: nats.js reads it and checks its digest.
    const os = await nc.jetstream().views.os(bucket);
    expect(sha256Hex((await os.getBlob(first.sha256))!)).toBe(first.sha256);
    expect((await os.info(first.sha256))?.size).toBe(bytes.byteLength);
  });

  it('reads dozens of objects at once over one connection (the keeper reading a large split)', async () => {
    // 48 objects of ~2.4 MiB asked for at once: unthrottled, the server cut the connection as a
    // slow consumer, chunks were lost, and the reads hung (heartbeats kept them waiting).
    const objects = Array.from({ length: 48 }, (_, i) => shard(1000 + i, 800));
    const keys = await Promise.all(objects.map(async (b) => (await store.put(b)).sha256));
    const events: string[] = [];
    void (async () => {
      for await (const st of nc.status()) events.push(String(st.type));
    })();
    const got = await Promise.all(keys.map((k) => store.get(k)));
    got.forEach((b, i) => expect(sha256Hex(b)).toBe(keys[i]));
    expect(events).not.toContain('disconnect');
  });

  it('refetches once on a hash mismatch, then reports ShardIntegrityError', async () => {
    const key = sha256Hex(shard(2));
    await store.putUnchecked(key, shard(3));
    const before = store.stats.refetches;
    const err = await store.get(key).catch((e) => e);
    expect(err).toBeInstanceOf(ShardIntegrityError);
    expect(err.sha256).toBe(key);
    expect(store.stats.refetches).toBe(before + 1);
  });

  it('says which shard is missing, and deletes', async () => {
    const bytes = shard(4, 3);
    const { sha256 } = await store.put(bytes);
    await store.delete(sha256);
    expect(await store.has(sha256)).toBe(false);
    await expect(store.get(sha256)).rejects.toBeInstanceOf(ShardNotFoundError);
    expect((await store.put(bytes)).stored).toBe(true);
  });

  it('says a shard is missing when its whole bucket is (a NATS whose storage was lost), not TIMEOUT', async () => {
    const reader = await ShardStore.open(nc, { bucket: `gp_absent_${randomBytes(4).toString('hex')}`, readOnly: true });
    await expect(reader.get('a'.repeat(64))).rejects.toBeInstanceOf(ShardNotFoundError);
  });

  it('lets a second connection read without creating anything', async () => {
    const { sha256 } = await store.put(shard(5, 10));
    const nc2 = await connect({ servers: TEST_NATS_URL });
    try {
      const reader = await ShardStore.open(nc2, { bucket });
      expect(sha256Hex(await reader.get(sha256))).toBe(sha256);
    } finally {
      await nc2.close();
    }
  });

  it('reads through the worker cache: the store once, then the disk', async () => {
    const { sha256 } = await store.put(shard(6, 20));
    const dir = await mkdtemp(join(tmpdir(), 'gp-reader-'));
    try {
      const cache = await ShardCache.open({ dir, maxBytes: 10 * 1024 * 1024 });
      const reader = new ShardReader(store, cache);
      const gets = store.stats.gets;
      const a = await reader.read(sha256);
      const b = await reader.read(sha256);
      expect(store.stats.gets).toBe(gets + 1);
      expect(b.labels).toEqual(a.labels);
      expect(a).toMatchObject({ count: 20, shape: [28, 28], normalisation: 'scale' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ShardStore on a server that stops answering for a moment (frozen with SIGSTOP)', () => {
  const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
  const TIMEOUT_MS = 400;
  let dir: string;
  let server: StartedNatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gp-shards-frozen-'));
    server = await startNatsServer(NATS_SERVER, join(dir, 'js'));
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });


  it('retries the requests that timed out and returns the shard, verified', async () => {
    const writer = await ShardStore.open(nc, {});
    const bytes = encodeShard({ count: 50, shape: [28, 28], normalisation: 'scale' }, new Float32Array(50 * 784).fill(0.5), new Int32Array(50));
    const { sha256 } = await writer.put(bytes);
    const reader = await ShardStore.open(nc, { readOnly: true, requestTimeoutMs: TIMEOUT_MS });
    // Frozen until a retry is under way, whatever the machine's load (see freezeUntil).
    const retried = (async () => {
      for (let i = 0; i < 1500 && reader.stats.retries < 1; i++) await new Promise((r) => setTimeout(r, 10));
    })();
    const thawed = server.freezeUntil(retried);
    const got = await reader.get(sha256);
    await thawed;
    expect(sha256Hex(got)).toBe(sha256);
    expect(reader.stats.retries).toBeGreaterThanOrEqual(1);
    expect(reader.stats.refetches).toBe(0);
  });

  it('still tells a missing shard from a timeout', async () => {
    const reader = await ShardStore.open(nc, { readOnly: true, requestTimeoutMs: TIMEOUT_MS });
    await expect(reader.get('0'.repeat(64))).rejects.toBeInstanceOf(ShardNotFoundError);
    expect(reader.stats.retries).toBe(0);
  });
});
