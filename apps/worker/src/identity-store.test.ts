import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileIdentityStore } from './identity-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gp-identity-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const identity = { workerId: 'w1', sessionSecret: 's3cret', groupId: 'g1', coordinator: 'h:1', savedAtMs: 5 };

describe('FileIdentityStore', () => {
  it('round-trips the identity in a 0600 file inside a new folder', async () => {
    const store = new FileIdentityStore(join(dir, 'state', 'worker-a.json'));
    expect(await store.load()).toBeUndefined();
    await store.save(identity);
    expect(await store.load()).toEqual(identity);
    expect((await stat(store.path)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(store.path, 'utf8'))).toEqual(identity);
  });

  it('ignores a damaged file (the worker registers afresh)', async () => {
    const path = join(dir, 'worker-b.json');
    await writeFile(path, '{"workerId": 1');
    expect(await new FileIdentityStore(path).load()).toBeUndefined();
    await writeFile(path, '{"workerId": "w1"}');
    expect(await new FileIdentityStore(path).load()).toBeUndefined();
  });
});
