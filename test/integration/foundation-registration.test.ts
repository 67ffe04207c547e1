import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CAPABILITIES,
  groupWithToken,
  grpcFailure,
  register,
  startTestCoordinator,
  type TestCoordinator,
} from './foundation-helpers.js';

let tc: TestCoordinator;

beforeAll(async () => {
  tc = await startTestCoordinator();
});
afterAll(async () => {
  await tc?.close();
});

async function countWorkers(): Promise<number> {
  const r = await tc.sql.query('select count(*)::int as n from workers');
  return r.rows[0].n;
}
async function tokenUses(id: string): Promise<number> {
  const r = await tc.sql.query('select uses from join_tokens where id = $1', [id]);
  return r.rows[0].uses;
}

describe('Register', () => {
  it('exchanges a valid token for an identity, NATS access and timings, and records an event', async () => {
    const { groupId, token, tokenId } = await groupWithToken(tc, 'reg-valid');
    const res = await register(tc.client(), { joinToken: token, workerName: 'alice-gpu' });
    expect(res.workerId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.sessionSecret).toMatch(/^gps_/);
    expect(res.groupId).toBe(groupId);
    expect(res.nats?.servers.length).toBeGreaterThan(0);
    expect(res.heartbeatIntervalMs).toBe(200);
    expect(res.leaseMs).toBe(30_000);
    expect(await tokenUses(tokenId)).toBe(1);

    const row = (await tc.sql.query('select * from workers where id = $1', [res.workerId])).rows[0];
    expect(row.name).toBe('alice-gpu');
    expect(row.capabilities).toMatchObject({ backend: 'wasm', gflops: 25.5, memoryBytes: 8 * 1024 ** 3, cpuCount: 2 });
    // Only a hash of the secret is stored.
    expect(row.secret_hash).not.toContain(res.sessionSecret);
    const ev = await tc.sql.query(`select type from events where worker_id = $1`, [res.workerId]);
    expect(ev.rows.map((r) => r.type)).toContain('worker.registered');

    const api = await tc.api('GET', `/v1/workers/${res.workerId}`);
    expect(api.status).toBe(200);
    expect(api.body).toMatchObject({ id: res.workerId, groupId, name: 'alice-gpu', capabilities: { backend: 'wasm' } });
  });

  it('refuses garbage, revoked, expired and used-up tokens with UNAUTHENTICATED and writes nothing', async () => {
    const revoked = await groupWithToken(tc, 'reg-revoked');
    expect((await tc.api('DELETE', `/v1/groups/${revoked.groupId}/tokens/${revoked.tokenId}`)).status).toBe(200);
    const expired = await groupWithToken(tc, 'reg-expired', { expiresInSeconds: 3600 });
    await tc.sql.query(`update join_tokens set expires_at = now() - interval '1 second' where id = $1`, [expired.tokenId]);
    const exhausted = await groupWithToken(tc, 'reg-exhausted', { maxUses: 1 });
    await register(tc.client(), { joinToken: exhausted.token, workerName: 'first' });

    const before = await countWorkers();
    const cases: [string, string, RegExp][] = [
      ['garbage', 'not-a-token', /unknown join token/],
      ['empty', '', /missing join token/],
      ['revoked', revoked.token, /revoked/],
      ['expired', expired.token, /expired/],
      ['exhausted', exhausted.token, /used up/],
    ];
    for (const [label, joinToken, message] of cases) {
      const err = await grpcFailure(register(tc.client(), { joinToken, workerName: `w-${label}` }));
      expect(err.code, label).toBe(status.UNAUTHENTICATED);
      expect(err.details, label).toMatch(message);
    }
    expect(await countWorkers()).toBe(before);
    expect(await tokenUses(exhausted.tokenId)).toBe(1);
    expect(await tokenUses(expired.tokenId)).toBe(0);
  });

  it('gives the last use of a token to exactly one of several concurrent registrations', async () => {
    const { token, tokenId } = await groupWithToken(tc, 'reg-race', { maxUses: 2 });
    const client = tc.client();
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => register(client, { joinToken: token, workerName: `racer-${i}` })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    expect(await tokenUses(tokenId)).toBe(2);
  });

  it('refuses malformed fields with INVALID_ARGUMENT naming the field, and writes nothing', async () => {
    const { token, tokenId } = await groupWithToken(tc, 'reg-invalid');
    const before = await countWorkers();
    const cases: [Parameters<typeof register>[1], RegExp][] = [
      [{ joinToken: token, workerName: '' }, /workerName/],
      [{ joinToken: token, workerName: 'x'.repeat(65) }, /workerName/],
      [{ joinToken: token, workerName: 'bad\u0007name' }, /workerName/],
      [{ joinToken: token, workerName: 'w', capabilities: { ...CAPABILITIES, gflops: Number.NaN } }, /capabilities\.gflops/],
      [{ joinToken: token, workerName: 'w', capabilities: { ...CAPABILITIES, gflops: -1 } }, /capabilities\.gflops/],
      [{ joinToken: token, workerName: 'w', capabilities: { ...CAPABILITIES, backend: 'tpu' } }, /capabilities\.backend/],
      [{ joinToken: token, workerName: 'w', capabilities: null }, /capabilities/],
    ];
    for (const [req, message] of cases) {
      const err = await grpcFailure(register(tc.client(), req));
      expect(err.code, String(message)).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(message);
    }
    expect(await countWorkers()).toBe(before);
    expect(await tokenUses(tokenId)).toBe(0);
  });

  it('gives a worker its identity back when it presents its previous id and secret within the lease', async () => {
    const { token, tokenId } = await groupWithToken(tc, 'reg-again', { maxUses: 1 });
    const client = tc.client();
    const first = await register(client, { joinToken: token, workerName: 'again' });
    const second = await register(client, {
      joinToken: token,
      workerName: 'again-renamed',
      previousWorkerId: first.workerId,
      previousSessionSecret: first.sessionSecret,
    });
    expect(second.workerId).toBe(first.workerId);
    expect(second.sessionSecret).not.toBe(first.sessionSecret);
    // No use spent (the token allowed one, already taken by the first registration).
    expect(await tokenUses(tokenId)).toBe(1);

    // A wrong secret does not get the identity; with the token used up it is refused.
    const err = await grpcFailure(register(client, { joinToken: token, workerName: 'x', previousWorkerId: first.workerId, previousSessionSecret: 'gps_wrong' }));
    expect(err.code).toBe(status.UNAUTHENTICATED);

    // Past the lease the identity is gone: a fresh registration needs a usable token.
    await tc.sql.query(`update workers set lease_expires_at = now() - interval '1 second' where id = $1`, [first.workerId]);
    const err2 = await grpcFailure(register(client, { joinToken: token, workerName: 'x', previousWorkerId: first.workerId, previousSessionSecret: second.sessionSecret }));
    expect(err2.code).toBe(status.UNAUTHENTICATED);
    expect(err2.details).toMatch(/used up/);
  });
});
