import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run.js';

// Port 1 on localhost: nothing answers, so a test that reached the network would fail with exit 1.
const env = { GRADPOOL_API: 'http://127.0.0.1:1', GRADPOOL_ADMIN_KEY: 'test-admin-key-0123456789' };
const dir = mkdtempSync(join(tmpdir(), 'gradpool-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, env, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('gradpool datasets import: files', () => {
  it('exits 2 with "file not found: X" for a missing train file, before uploading anything', async () => {
    const missing = join(dir, 'nope.csv');
    const r = await cli('datasets', 'import', missing, '--format', 'csv', '--name', 'x');
    expect(r.code).toBe(2);
    expect(r.err).toEqual([`gradpool: file not found: ${missing}`]);
  });

  it('checks the --test-file files too', async () => {
    const train = join(dir, 'train.csv');
    writeFileSync(train, 'a,label\n1,0\n');
    const missing = join(dir, 'test.csv');
    const r = await cli('datasets', 'import', train, '--format', 'csv', '--name', 'x', '--test-file', missing);
    expect(r.code).toBe(2);
    expect(r.err).toEqual([`gradpool: file not found: ${missing}`]);
  });

  it('exits 2 for a directory', async () => {
    const r = await cli('datasets', 'import', dir, '--format', 'csv', '--name', 'x');
    expect(r.code).toBe(2);
    expect(r.err).toEqual([`gradpool: not a file: ${dir}`]);
  });

  it('with files that exist, goes on to the API (here unreachable: exit 1)', async () => {
    const train = join(dir, 'train.csv');
    writeFileSync(train, 'a,label\n1,0\n');
    const r = await cli('datasets', 'import', train, '--format', 'csv', '--name', 'x');
    expect(r.code).toBe(1);
    expect(r.err.join('\n')).toMatch(/cannot reach the coordinator at http:\/\/127\.0\.0\.1:1/);
  });
});
