import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ShardCache } from './shard-cache.js';
import { sha256Hex } from './shard.codec.js';

const blob = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe('ShardCache', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gp-cache-test-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('evicts the least recently used shards over the cap', async () => {
    const cache = await ShardCache.open({ dir, maxBytes: 300 });
    const [a, b, c, d] = [1, 2, 3, 4].map((i) => blob(100, i));
    const [ka, kb, kc, kd] = [a, b, c, d].map(sha256Hex);
    await cache.put(ka, a);
    await cache.put(kb, b);
    await cache.put(kc, c);
    expect(await cache.get(ka)).toEqual(a); // a is now the most recent
    await cache.put(kd, d);
    expect(cache.has(kb)).toBe(false);
    expect(cache.keys()).toEqual([kc, ka, kd]);
    expect(cache.size).toBe(300);
    expect((await readdir(dir)).sort()).toEqual([ka, kc, kd].map((k) => `${k}.shard`).sort());
  });

  it('fetches on a miss, serves hits, and is shared by later opens of the same directory', async () => {
    const cache = await ShardCache.open({ dir, maxBytes: 1000 });
    const a = blob(50, 9);
    const ka = sha256Hex(a);
    let fetches = 0;
    const fetch = async () => {
      fetches++;
      return a;
    };
    expect(await cache.getOrFetch(ka, fetch)).toEqual(a);
    expect(await cache.getOrFetch(ka, fetch)).toEqual(a);
    expect(fetches).toBe(1);
    expect([cache.hits, cache.misses]).toEqual([1, 1]);
    const other = await ShardCache.open({ dir, maxBytes: 1000 });
    expect(await other.getOrFetch(ka, fetch)).toEqual(a);
    expect(fetches).toBe(1);
  });

  it('drops a corrupted file and refetches', async () => {
    const cache = await ShardCache.open({ dir, maxBytes: 1000 });
    const a = blob(50, 5);
    const ka = sha256Hex(a);
    await cache.put(ka, a);
    await writeFile(join(dir, `${ka}.shard`), blob(50, 6));
    expect(await cache.get(ka)).toBeNull();
    expect(cache.has(ka)).toBe(false);
  });

  it('trims an over-full directory at open', async () => {
    const first = await ShardCache.open({ dir, maxBytes: 1000 });
    for (let i = 0; i < 5; i++) await first.put(sha256Hex(blob(100, i)), blob(100, i));
    const small = await ShardCache.open({ dir, maxBytes: 250 });
    expect(small.size).toBeLessThanOrEqual(250);
    expect((await readdir(dir)).length).toBe(2);
  });
});
