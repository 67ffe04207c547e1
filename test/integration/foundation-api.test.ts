import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupWithToken, register, startTestCoordinator, type TestCoordinator } from './foundation-helpers.js';

let tc: TestCoordinator;

beforeAll(async () => {
  tc = await startTestCoordinator();
});
afterAll(async () => {
  await tc?.close();
});

async function key(role: string, groupId?: string): Promise<string> {
  const r = await tc.api('POST', '/v1/api-keys', { body: { name: `${role}-key`, role, groupId } });
  expect(r.status).toBe(201);
  return r.body.key;
}

describe('admin API', () => {
  it('serves health without a key, and readiness of Postgres and NATS', async () => {
    expect(await tc.api('GET', '/healthz', { key: null })).toEqual({ status: 200, body: { status: 'ok' } });
    const ready = await tc.api('GET', '/readyz', { key: null });
    expect(ready).toEqual({ status: 200, body: { status: 'ready', checks: { database: 'ok', nats: 'ok', scheduling: 'ok' } } });
    const metrics = await tc.api('GET', '/metrics', { key: null });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('gradpool_worker_registrations_total');
    expect(metrics.body).toMatch(/gradpool_workers{status="online"} \d+/);
  });

  it('serves the OpenAPI document at /docs-json and the UI at /docs', async () => {
    const doc = await tc.api('GET', '/docs-json', { key: null });
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/groups', '/v1/groups/{id}/tokens', '/v1/workers', '/v1/workers/{id}/drain', '/v1/api-keys']));
    // Request bodies are documented from the zod schemas.
    expect(JSON.stringify(doc.body.paths['/v1/groups'].post.requestBody)).toContain('name');
    expect((await tc.api('GET', '/docs', { key: null })).status).toBe(200);
  });

  it('answers 401 without a key, with an unknown key, and with a revoked key (JSON error body)', async () => {
    const none = await tc.api('GET', '/v1/groups', { key: null });
    expect(none).toEqual({ status: 401, body: { statusCode: 401, error: 'Unauthorized', message: expect.stringMatching(/missing API key/) } });
    expect((await tc.api('GET', '/v1/groups', { key: 'gpk_nope' })).status).toBe(401);
    const k = await tc.api('POST', '/v1/api-keys', { body: { name: 'short-lived', role: 'viewer' } });
    expect((await tc.api('GET', '/v1/groups', { key: k.body.key })).status).toBe(200);
    expect((await tc.api('DELETE', `/v1/api-keys/${k.body.id}`)).body.revokedAt).toBeTruthy();
    const revoked = await tc.api('GET', '/v1/groups', { key: k.body.key });
    expect(revoked.status).toBe(401);
    expect(revoked.body.message).toMatch(/revoked/);
  });

  it('accepts the key as x-api-key too', async () => {
    expect((await tc.api('GET', '/v1/groups', { key: null, headers: { 'x-api-key': tc.adminKey } })).status).toBe(200);
  });

  it('lets a viewer read but not write (403)', async () => {
    const viewer = await key('viewer');
    expect((await tc.api('GET', '/v1/groups', { key: viewer })).status).toBe(200);
    expect((await tc.api('GET', '/v1/workers', { key: viewer })).status).toBe(200);
    const denied = await tc.api('POST', '/v1/groups', { key: viewer, body: { name: 'nope' } });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ statusCode: 403, error: 'Forbidden' });
    expect((await tc.api('POST', '/v1/api-keys', { key: viewer, body: { name: 'x', role: 'admin' } })).status).toBe(403);
    expect((await tc.api('GET', '/v1/api-keys', { key: viewer })).status).toBe(403);
  });

  it('scopes a group admin to its group (403 elsewhere)', async () => {
    const mine = await groupWithToken(tc, 'ga-mine');
    const other = await groupWithToken(tc, 'ga-other');
    const ga = await key('group-admin', mine.groupId);

    const list = await tc.api('GET', '/v1/groups', { key: ga });
    expect(list.body.map((g: { id: string }) => g.id)).toEqual([mine.groupId]);
    expect((await tc.api('GET', `/v1/groups/${mine.groupId}`, { key: ga })).status).toBe(200);
    expect((await tc.api('GET', `/v1/groups/${other.groupId}`, { key: ga })).status).toBe(403);
    expect((await tc.api('POST', `/v1/groups/${mine.groupId}/tokens`, { key: ga, body: { maxUses: 3 } })).status).toBe(201);
    expect((await tc.api('POST', `/v1/groups/${other.groupId}/tokens`, { key: ga, body: {} })).status).toBe(403);
    expect((await tc.api('GET', `/v1/groups/${other.groupId}/tokens`, { key: ga })).status).toBe(403);
    expect((await tc.api('DELETE', `/v1/groups/${other.groupId}/tokens/${other.tokenId}`, { key: ga })).status).toBe(403);
    expect((await tc.api('GET', `/v1/workers?group=${other.groupId}`, { key: ga })).status).toBe(403);
    expect((await tc.api('POST', '/v1/groups', { key: ga, body: { name: 'ga-new' } })).status).toBe(403);

    // Workers: only its group's are listed; another group's worker is out of reach.
    const w1 = await register(tc.client(), { joinToken: mine.token, workerName: 'mine' });
    const w2 = await register(tc.client(), { joinToken: other.token, workerName: 'theirs' });
    const workers = await tc.api('GET', '/v1/workers', { key: ga });
    expect(workers.body.map((w: { id: string }) => w.id)).toEqual([w1.workerId]);
    expect((await tc.api('GET', `/v1/workers/${w2.workerId}`, { key: ga })).status).toBe(403);
    expect((await tc.api('POST', `/v1/workers/${w2.workerId}/drain`, { key: ga })).status).toBe(403);
  });

  it('validates input with 422 naming the field', async () => {
    const cases: [string, string, unknown, RegExp][] = [
      ['POST', '/v1/groups', {}, /name/],
      ['POST', '/v1/groups', { name: 42 }, /name/],
      ['POST', '/v1/groups', { name: 'ok', extra: 1 }, /extra/],
      ['POST', '/v1/api-keys', { name: 'k', role: 'root' }, /role/],
      ['POST', '/v1/api-keys', { name: 'k', role: 'group-admin' }, /groupId/],
    ];
    for (const [method, path, body, message] of cases) {
      const r = await tc.api(method, path, { body });
      expect(r.status, JSON.stringify(body)).toBe(422);
      expect(r.body).toMatchObject({ statusCode: 422, error: 'Unprocessable Entity', message: expect.stringMatching(message) });
    }
    const { groupId } = await groupWithToken(tc, 'validation');
    for (const [body, message] of [
      [{ maxUses: 0 }, /maxUses/],
      [{ maxUses: 1.5 }, /maxUses/],
      [{ expiresInSeconds: -5 }, /expiresInSeconds/],
      [{ expiresAt: 'tomorrow' }, /expiresAt/],
      [{ expiresAt: '2001-01-01T00:00:00Z' }, /expiresAt: must be in the future/],
    ] as const) {
      const r = await tc.api('POST', `/v1/groups/${groupId}/tokens`, { body });
      expect(r.status, JSON.stringify(body)).toBe(422);
      expect(r.body.message).toMatch(message);
    }
    expect((await tc.api('GET', '/v1/workers?status=sleeping')).status).toBe(422);
    // Malformed JSON is a 400 from the HTTP layer, still in the error shape.
    const res = await fetch(`${tc.handle.httpUrl}/v1/groups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tc.adminKey}`, 'content-type': 'application/json' },
      body: '{"name":',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ statusCode: 400, error: 'Bad Request' });
  });

  it('answers 409 for a duplicate group name and 404 for unknown things', async () => {
    expect((await tc.api('POST', '/v1/groups', { body: { name: 'dup' } })).status).toBe(201);
    const dup = await tc.api('POST', '/v1/groups', { body: { name: 'dup' } });
    expect(dup.status).toBe(409);
    expect(dup.body.message).toMatch(/already exists/);
    expect((await tc.api('GET', '/v1/groups/00000000-0000-0000-0000-000000000000')).status).toBe(404);
    expect((await tc.api('GET', '/v1/groups/not-a-uuid')).status).toBe(404);
    expect((await tc.api('GET', '/v1/workers/not-a-uuid')).status).toBe(404);
    expect((await tc.api('GET', '/v1/groups/00000000-0000-0000-0000-000000000000/tokens')).status).toBe(404);
    expect((await tc.api('DELETE', '/v1/api-keys/00000000-0000-0000-0000-000000000000')).status).toBe(404);
    expect((await tc.api('GET', '/v1/nothing')).status).toBe(404);
  });

  it('creates, lists and revokes join tokens; the plaintext is returned once and stored hashed', async () => {
    const g = await tc.api('POST', '/v1/groups', { body: { name: 'tokens', description: 'a lab' } });
    const t = await tc.api('POST', `/v1/groups/${g.body.id}/tokens`, { body: { name: 'lab', maxUses: 5, expiresInSeconds: 3600 } });
    expect(t.status).toBe(201);
    expect(t.body).toMatchObject({ groupId: g.body.id, name: 'lab', maxUses: 5, uses: 0, usable: true, revokedAt: null });
    expect(t.body.token).toMatch(/^gpj_/);
    expect(t.body.token.startsWith(t.body.prefix)).toBe(true);
    const list = await tc.api('GET', `/v1/groups/${g.body.id}/tokens`);
    expect(list.body).toHaveLength(1);
    expect(list.body[0]).not.toHaveProperty('token');
    const stored = await tc.sql.query('select token_hash from join_tokens where id = $1', [t.body.id]);
    expect(stored.rows[0].token_hash).not.toContain(t.body.token);
    const revoked = await tc.api('DELETE', `/v1/groups/${g.body.id}/tokens/${t.body.id}`);
    expect(revoked.body).toMatchObject({ usable: false, revokedAt: expect.any(String) });
    const keys = await tc.api('GET', '/v1/api-keys');
    expect(keys.body.find((k: { name: string }) => k.name === 'bootstrap')).toMatchObject({ role: 'admin' });
    expect(JSON.stringify(keys.body)).not.toContain(tc.adminKey);
  });
});
