import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

describe('gradpool nats init', () => {
  it('writes an operator-mode nats-server config, the coordinator credentials and its env, then refuses to overwrite them', async () => {
    const out = join(dir, 'nats');
    const first = await cli('nats', 'init', '--out', out, '--port', '4333', '--store-dir', '/srv/js');
    expect(first.code, first.err.join('\n')).toBe(0);
    const conf = readFileSync(join(out, 'nats-server.conf'), 'utf8');
    expect(conf).toMatch(/^port: 4333$/m);
    expect(conf).toMatch(/^operator: eyJ/m);
    expect(conf).toContain('resolver: { type: full, dir: "/srv/js/jwt"');
    expect(conf).toContain('"/srv/js"');
    expect(readFileSync(join(out, 'coordinator.creds'), 'utf8')).toContain('BEGIN NATS USER JWT');
    const envFile = readFileSync(join(out, 'coordinator.env'), 'utf8');
    expect(envFile).toMatch(/^GRADPOOL_NATS_ACCOUNT_SEED=SA[A-Z2-7]{56}$/m);
    expect(envFile).toContain(`NATS_CREDS=${join(out, 'coordinator.creds')}`);
    expect(envFile).toMatch(/^GRADPOOL_NATS_OPERATOR_SEED=SO[A-Z2-7]{56}$/m);
    expect(envFile).toContain(`GRADPOOL_NATS_SYSTEM_CREDS=${join(out, 'system.creds')}`);
    expect(readFileSync(join(out, 'system.creds'), 'utf8')).toContain('BEGIN NATS USER JWT');
    for (const f of ['coordinator.env', 'coordinator.creds', 'system.creds']) expect(statSync(join(out, f)).mode & 0o077).toBe(0);
    const again = await cli('nats', 'init', '--out', out);
    expect(again.code).toBe(2);
    expect(again.err.join('\n')).toMatch(/exist.*--force/);
    expect((await cli('nats', 'init', '--out', out, '--force', '--jwt-dir', '/srv/jwt')).code).toBe(0);
    expect(readFileSync(join(out, 'nats-server.conf'), 'utf8')).toContain('dir: "/srv/jwt"');
    expect((await cli('nats', 'init', '--out', out, '--force', '--port', 'x')).code).toBe(2);
  });
});
