/**
 * A worker's own NATS user (libs/nats-auth, as the coordinator issues it with an Assignment)
 * against a nats-server in operator mode: everything the runner does for its job works through
 * the runner's own code (connect, shard reads, catching up from the keeper's updates,
 * checkpoints, the exchange's subjects), and nothing beyond its job does.
 */
import { buckets, subjects } from '@gradpool/protocol';
import { ShardStore } from '@gradpool/datasets';
import { ensureUpdatesStream, publishUpdate } from '@gradpool/exchange';
import { WorkerCredentialIssuer, workerInboxPrefix } from '@gradpool/nats-auth';
import { startSecuredNatsServer, type SecuredNats } from '@gradpool/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, credsAuthenticator, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointReader } from './model-state.js';
import { connectDataPlane } from './nats-connect.js';
import { latestUpdate, replayUpdates } from './replay.js';

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
const J1 = 'job1';
const J2 = 'job2';

let dir: string;
let nats: SecuredNats;
let admin: NatsConnection;
let sha256: string;
const open: NatsConnection[] = [];

async function workerConnection(workerId: string, jobId: string, shardsBucket?: string): Promise<NatsConnection> {
  const issuer = WorkerCredentialIssuer.fromSeed(nats.setup.account.seed, { ttlMs: 3_600_000 });
  const c = await issuer.forJob(workerId, jobId, { shardsBucket });
  const nc = await connectDataPlane({ servers: [nats.url], user: '', password: '', token: '', creds: c.creds, inboxPrefix: c.inboxPrefix }, `test ${workerId}`);
  open.push(nc);
  return nc;
}

/** Resolves with the server's permission error for an operation, or 'ok'. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as Error).message;
  }
}

/** Whether `sub`'s connection receives a message published by `pub` on `subject` within 500 ms. */
async function delivered(pub: NatsConnection, sub: NatsConnection, subject: string): Promise<boolean> {
  const s = sub.subscribe(subjects.jobAll(J1));
  await sub.flush();
  let got = false;
  const done = (async () => {
    for await (const m of s) if (m.subject === subject) got = true;
  })();
  pub.publish(subject, new Uint8Array([1, 2, 3]));
  await pub.flush().catch(() => undefined);
  await new Promise((r) => setTimeout(r, 500));
  s.unsubscribe();
  await done;
  return got;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gp-nats-auth-'));
  nats = await startSecuredNatsServer(NATS_SERVER, dir);
  admin = await connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(nats.setup.coordinatorCreds)) });
  const store = await ShardStore.open(admin);
  ({ sha256 } = await store.put(new Uint8Array(3_000_000).map((_, i) => i % 251)));
  const jsm = await admin.jetstreamManager();
  await ensureUpdatesStream(jsm);
  for (const job of [J1, J2]) for (let r = 0; r < 3; r++) await publishUpdate(admin.jetstream(), job, r, new Float32Array(10).fill(r), `hash-${job}-${r}`);
  for (const job of [J1, J2]) await (await admin.jetstream().views.os(buckets.checkpoints(job))).putBlob({ name: 'round-00000002' }, new Uint8Array(100));
}, 60_000);

afterAll(async () => {
  for (const nc of open) await nc.close().catch(() => undefined);
  await admin?.close();
  await nats?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a worker NATS user limited to one job', () => {
  it('does what the runner needs for its job', async () => {
    const w1 = await workerConnection('w1', J1);
    const w2 = await workerConnection('w2', J1);
    const shards = await ShardStore.open(w1, { readOnly: true });
    expect((await shards.get(sha256)).byteLength).toBe(3_000_000);
    expect(await latestUpdate(w1, 'GP_UPDATES', J1)).toEqual({ round: 2, paramHash: `hash-${J1}-2` });
    const rounds: number[] = [];
    for await (const u of replayUpdates({ nc: w1, stream: 'GP_UPDATES', jobId: J1, size: 10, from: 0, to: 3, signal: new AbortController().signal, idleTimeoutMs: 5000 })) {
      rounds.push(u.round);
      expect(u.paramHash).toBe(`hash-${J1}-${u.round}`);
    }
    expect(rounds).toEqual([0, 1, 2]);
    expect(await new CheckpointReader(w1, buckets.checkpoints(J1)).rounds()).toEqual([2]);
    // The exchange: its own reduce, gather and control subjects reach the other member.
    expect(await delivered(w1, w2, subjects.reduce(J1, 1, 0, 0, 'w1'))).toBe(true);
    expect(await delivered(w1, w2, subjects.gather(J1, 1, 0, 0, 'w1'))).toBe(true);
    expect(await delivered(w1, w2, subjects.exchangeControl(J1, 'w1'))).toBe(true);
  });

  it("reads its job's dataset's train bucket only: not another dataset's, not the evaluation splits, and none can be listed", async () => {
    const mine = buckets.datasetShards('0b5e7c1e-0000-4000-8000-00000000000a');
    const other = buckets.datasetShards('0b5e7c1e-0000-4000-8000-00000000000b');
    const put = async (bucket: string, seed: number) => (await (await ShardStore.open(admin, { bucket })).put(new Uint8Array(2_000_000).map((_, i) => (i * seed) % 251))).sha256;
    const [a, b] = [await put(mine, 7), await put(other, 11)];
    const w = await workerConnection('w5', J1, mine);
    expect((await (await ShardStore.open(w, { bucket: mine, readOnly: true })).get(a)).byteLength).toBe(2_000_000);
    // Another dataset's shards, even by a name it knows: refused.
    expect(await outcome((await ShardStore.open(w, { bucket: other, readOnly: true, requestAttempts: 1 })).get(b))).toMatch(/permissions violation/i);
    const jsm = (await w.jetstreamManager({ checkAPI: false })) as unknown as { consumers: { add(s: string, c: object): Promise<unknown> } };
    const everyChunk = (bucket: string) =>
      jsm.consumers.add(`OBJ_${bucket}`, { name: 'spy', filter_subject: `$O.${bucket}.C.*`, ack_policy: 'none', deliver_subject: `${workerInboxPrefix('w5')}.spy` });
    expect(await outcome(everyChunk(other))).toMatch(/permissions violation/i);
    // Nor the evaluation splits of its own dataset (the keeper's alone).
    expect(await outcome(everyChunk(buckets.datasetEvalShards('0b5e7c1e-0000-4000-8000-00000000000a')))).toMatch(/permissions violation/i);
    expect(await outcome(everyChunk(buckets.shards))).toMatch(/permissions violation/i);
    // No listing of object names and chunk subjects (stream info with a subjects filter).
    for (const bucket of [mine, other]) {
      expect(await outcome(w.request(`$JS.API.STREAM.INFO.OBJ_${bucket}`, new TextEncoder().encode(JSON.stringify({ subjects_filter: '>' })), { timeout: 2000 }))).toMatch(/permissions violation/i);
    }
    for (const bucket of [mine, other]) await (await ShardStore.open(admin, { bucket })).destroy();
  });

  it('cannot speak for another member, reach another job, or write anything shared', async () => {
    const w1 = await workerConnection('w1', J1);
    const w2 = await workerConnection('w2', J1);
    // Spoofing: w1 publishing as w2 is refused by the server, so w2 never sees it.
    expect(await delivered(w1, w2, subjects.reduce(J1, 1, 0, 0, 'w2'))).toBe(false);
    expect(await delivered(w1, w2, subjects.gather(J1, 1, 0, 0, 'w2'))).toBe(false);
    // Another job: no publishing into it, no listening to it.
    expect(await delivered(w1, admin, subjects.reduce(J2, 1, 0, 0, 'w1'))).toBe(false);
    // The server's -ERR usually arrives before flush()'s PONG, so the outcome is taken (and the
    // rejection handled) at once, not after the flush, or Node reports it as unhandled.
    const spy = w1.subscribe(subjects.jobAll(J2));
    const listened = outcome(
      (async () => {
        for await (const m of spy) void m;
      })(),
    );
    await w1.flush();
    let timer: NodeJS.Timeout | undefined;
    const noError = new Promise<string>((done) => (timer = setTimeout(() => done('no error within 3 s'), 3000)));
    expect(await Promise.race([listened, noError])).toMatch(/permissions violation/i);
    clearTimeout(timer);
    expect(await latestUpdate(w1, 'GP_UPDATES', J2)).toBeNull();
    const replayJ2 = (async () => {
      for await (const u of replayUpdates({ nc: w1, stream: 'GP_UPDATES', jobId: J2, size: 10, from: 0, to: 3, signal: new AbortController().signal, idleTimeoutMs: 2000 })) void u;
    })();
    expect(await outcome(replayJ2)).toMatch(/cannot read the updates stream.*permissions violation/i);
    expect(await outcome(new CheckpointReader(w1, buckets.checkpoints(J2)).rounds())).toMatch(/permissions violation/i);
    // Shared state is read-only: shards, the keeper's updates, streams.
    const asWorker = await ShardStore.open(w1, { readOnly: true });
    expect(await outcome(asWorker.put(new Uint8Array(10)))).toMatch(/read-only/);
    expect(await outcome(w1.jetstream().publish(`$O.${buckets.shards}.C.x`, new Uint8Array(4)))).toMatch(/permissions violation/i);
    expect(await outcome(w1.jetstream().publish('gp.keeper.job1.u.9', new Uint8Array(4)))).toMatch(/permissions violation/i);
    const jsm = await w1.jetstreamManager({ checkAPI: false });
    expect(await outcome(jsm.streams.delete('GP_UPDATES'))).toMatch(/permissions violation/i);
    expect(await outcome(jsm.streams.purge(`OBJ_${buckets.shards}`))).toMatch(/permissions violation/i);
    // The data are all still there.
    expect(await latestUpdate(admin, 'GP_UPDATES', J2)).toEqual({ round: 2, paramHash: `hash-${J2}-2` });
  });

  it('when its user lapses, the connection signs in again with the newest credentials and its subscriptions go on', async () => {
    const issuer = WorkerCredentialIssuer.fromSeed(nats.setup.account.seed, { ttlMs: 10_000 });
    // A user with 3 s left, and a fresh one the coordinator sends a second later (NatsAccessRefresh).
    const first = await issuer.forJob('w3', J1, { now: Date.now() - 7000 });
    let latest: { creds: string } | null = null;
    const access = { servers: [nats.url], user: '', password: '', token: '', creds: first.creds, inboxPrefix: first.inboxPrefix };
    const nc = await connectDataPlane(access, 'refresh', () => (latest ? { ...access, ...latest } : null));
    open.push(nc);
    const events: string[] = [];
    void (async () => {
      for await (const s of nc.status()) events.push(String(s.type));
    })();
    const sub = nc.subscribe(subjects.gatherEpoch(J1, 1));
    await nc.flush();
    setTimeout(() => void issuer.forJob('w3', J1).then((c) => (latest = { creds: c.creds })), 1000);
    await new Promise((r) => setTimeout(r, 6000));
    expect(events).toContain('reconnect');
    const got = (async () => {
      for await (const m of sub) return m.subject;
    })();
    admin.publish(subjects.gather(J1, 1, 0, 0, 'w9'), new Uint8Array([1]));
    expect(await got).toBe(subjects.gather(J1, 1, 0, 0, 'w9'));
  });

  it('is refused once it has expired, and a seed that is not an account seed is a clear error', async () => {
    expect(() => WorkerCredentialIssuer.fromSeed('SUAM…', { ttlMs: 60_000 })).toThrow(/not an nkey seed/);
    expect(() => WorkerCredentialIssuer.fromSeed(nats.setup.account.seed, { ttlMs: 1000 })).toThrow(/at least 10 s/);
    const issuer = WorkerCredentialIssuer.fromSeed(nats.setup.account.seed, { ttlMs: 60_000 });
    const old = await issuer.forJob('w9', J1, { now: Date.now() - 3_600_000 });
    const err = await outcome(connectDataPlane({ servers: [nats.url], user: '', password: '', token: '', creds: old.creds, inboxPrefix: old.inboxPrefix }, 'expired'));
    expect(err).toMatch(/cannot connect to NATS.*(authorization|expired)/i);
  });
});
