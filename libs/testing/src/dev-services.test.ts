import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DevServicesError, ensureDevServices, findExecutable, freePort } from './dev-services.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gradpool-dev-services-'));
  dirs.push(d);
  return d;
}

describe('findExecutable', () => {
  it('searches PATH, then the extra directories, and skips files that are not executable', () => {
    const onPath = tempDir();
    const extra = tempDir();
    writeFileSync(join(onPath, 'nats-server'), '');
    chmodSync(join(onPath, 'nats-server'), 0o644);
    writeFileSync(join(extra, 'nats-server'), '#!/bin/sh\n');
    chmodSync(join(extra, 'nats-server'), 0o755);
    expect(findExecutable('nats-server', onPath, [])).toBeUndefined();
    expect(findExecutable('nats-server', onPath, [extra])).toBe(join(extra, 'nats-server'));
    expect(findExecutable('nats-server', '', [])).toBeUndefined();
  });
});

describe('ensureDevServices', () => {
  it('without a NATS answering and without a nats-server binary, says how to get one', async () => {
    // freePort() closes its listener, so nothing answers on this port.
    const natsPort = await freePort();
    const attempt = ensureDevServices({
      databaseUrl: 'postgres://unused@127.0.0.1:1/unused', // given: nothing is probed or started for Postgres
      natsPort,
      pathEnv: '',
      extraBinDirs: [],
      dataDir: tempDir(),
    });
    const err = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DevServicesError);
    const message = (err as Error).message;
    expect(message).toContain(`No NATS server answers on 127.0.0.1:${natsPort}`);
    expect(message).toContain('apt-get install nats-server'); // the Debian/Ubuntu package
    expect(message).toContain('deploy/compose.yaml');
    expect(message).toContain('NATS_URL');
  });
});
