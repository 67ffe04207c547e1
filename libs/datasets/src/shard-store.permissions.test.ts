/**
 * Workers read shards with read-only NATS credentials. A dedicated nats-server with users
 * (started on a free port, removed after) checks the permission set the coordinator must hand
 * out: READ_ONLY_SHARD_PERMISSIONS below.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeShard, sha256Hex } from './shard.codec.js';
import { shardReaderPermissions } from '@gradpool/nats-auth';
import { ShardStore } from './shard-store.js';

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
const BUCKET = 'gp_shards';

let server: ChildProcess;
let dir: string;
let url: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gp-nats-perm-'));
  const perms = shardReaderPermissions(BUCKET);
  const q = (xs: string[]) => xs.map((x) => JSON.stringify(x)).join(', ');
  const conf = `
listen: "127.0.0.1:-1"
jetstream { store_dir: ${JSON.stringify(join(dir, 'js'))} }
authorization {
  users = [
    { user: "coordinator", password: "c" }
    { user: "worker", password: "w", permissions: { publish: { allow: [${q(perms.publish)}] }, subscribe: { allow: ["_INBOX.>"] } } }
  ]
}
`;
  await writeFile(join(dir, 'nats.conf'), conf);
  server = spawn(NATS_SERVER, ['-c', join(dir, 'nats.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  url = await new Promise<string>((resolve, reject) => {
    let log = '';
    const onData = (d: Buffer) => {
      log += d.toString();
      const m = /Listening for client connections on ([\d.]+:\d+)/.exec(log);
      if (m) resolve(`nats://${m[1]}`);
    };
    server.stdout!.on('data', onData);
    server.stderr!.on('data', onData);
    server.once('exit', (code) => reject(new Error(`nats-server exited with ${code}: ${log}`)));
  });
});

afterAll(async () => {
  server?.kill('SIGTERM');
  if (server && server.exitCode === null) await new Promise((r) => server.once('exit', r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('read-only shard access', () => {
  it('lets a worker with shardReaderPermissions get and verify shards, and nothing more', async () => {
    const bytes = encodeShard({ count: 50, shape: [4, 4], normalisation: 'none' }, new Float32Array(800).fill(0.25), new Int32Array(50).fill(3));
    const admin = await connect({ servers: url, user: 'coordinator', pass: 'c' });
    const worker = await connect({ servers: url, user: 'worker', pass: 'w', timeout: 2000 });
    try {
      const store = await ShardStore.open(admin, { bucket: BUCKET });
      const { sha256 } = await store.put(bytes);
      const reader = await ShardStore.open(worker, { bucket: BUCKET, readOnly: true });
      expect(sha256Hex(await reader.get(sha256))).toBe(sha256);
      expect(await reader.has('0'.repeat(64))).toBe(false);
      await expect(reader.put(bytes)).rejects.toThrow(/read-only/);
      // The server, too, refuses writes from these credentials.
      await expect(worker.jetstream({ timeout: 1000 }).publish(`$O.${BUCKET}.C.intruder`, new Uint8Array(8))).rejects.toThrow();
      await expect((await admin.jetstreamManager()).streams.getMessage(`OBJ_${BUCKET}`, { last_by_subj: `$O.${BUCKET}.C.intruder` })).rejects.toThrow();
      // Nor can they list the bucket or read its messages by sequence: only an object whose name they know.
      const jsm = (await worker.jetstreamManager({ checkAPI: false })) as unknown as {
        direct: { getMessage(s: string, q: object): Promise<unknown> };
        consumers: { add(s: string, c: object): Promise<unknown> };
      };
      await expect(jsm.direct.getMessage(`OBJ_${BUCKET}`, { seq: 1 })).rejects.toThrow(/permissions violation/i);
      await expect(jsm.consumers.add(`OBJ_${BUCKET}`, { ack_policy: 'none', deliver_subject: '_INBOX.x' })).rejects.toThrow(/permissions violation/i);
      await expect(jsm.consumers.add(`OBJ_${BUCKET}`, { name: 'spy', filter_subject: `$O.${BUCKET}.M.>`, ack_policy: 'none', deliver_subject: '_INBOX.x' })).rejects.toThrow(/permissions violation/i);
      // Stream info with a subjects filter would list every object's name and chunk subject.
      await expect(worker.request(`$JS.API.STREAM.INFO.OBJ_${BUCKET}`, new TextEncoder().encode(JSON.stringify({ subjects_filter: '>' })), { timeout: 2000 })).rejects.toThrow(/permissions violation/i);
    } finally {
      await worker.close().catch(() => undefined);
      await admin.close();
    }
  });
});
