import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from './build.js';
import { paramHash } from './checkpoint.js';

const CHILD = fileURLToPath(new URL('../dist/testing/determinism-child.js', import.meta.url));
const run = promisify(execFile);

beforeAll(() => {
  // Spawned processes run the built library (as the vitest config says); build it if needed.
  if (!existsSync(CHILD)) execFileSync('npx', ['tsc', '-b', fileURLToPath(new URL('..', import.meta.url))], { stdio: 'inherit' });
});

describe('determinism', () => {
  it('two processes with the same seed and batches end with identical parameter bytes', async () => {
    const [a, b] = await Promise.all([run(process.execPath, [CHILD, '6']), run(process.execPath, [CHILD, '6'])]);
    const ha = JSON.parse(a.stdout);
    expect(Object.keys(ha)).toEqual(['mlp', 'cnn', 'transformer-lm']);
    expect(JSON.parse(b.stdout)).toEqual(ha);
  });

  it('initial parameters have pinned bytes (same on every machine)', async () => {
    const m = await buildModel({ kind: 'mlp', inputShape: [4], hidden: [3], numClasses: 2 });
    const p = m.init(42);
    expect(Array.from(p.subarray(0, 3))).toEqual(PINNED_FIRST);
    expect(paramHash(p)).toBe(PINNED_HASH);
  });
});

// Computed once; a change here means checkpoints from older builds no longer reproduce.
const PINNED_FIRST = [0.37782013416290283, -0.07572633028030396, -0.33845409750938416];
const PINNED_HASH = '802c12505d6b466a1de14d7b5dce81201f145ae2f16113d02e680083de1046e8';
