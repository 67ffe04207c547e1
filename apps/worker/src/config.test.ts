import { describe, expect, it } from 'vitest';
import { BACKEND_ORDER } from '@gradpool/training';
import { BACKEND_NAMES, ConfigError, identityFileName, parseByteSize, parseCoordinatorAddress, parseJoinConfig } from './config.js';

const defaults = { hostname: 'donor-box', homedir: '/home/donor' };
const parse = (flags: Parameters<typeof parseJoinConfig>[0], env: Record<string, string> = {}) => parseJoinConfig(flags, env, defaults);
const errorOf = (fn: () => unknown): ConfigError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
};

describe('parseJoinConfig', () => {
  it('applies defaults', () => {
    expect(parse({ coordinator: 'coord.example.org:50051', token: 'tok' })).toEqual({
      coordinator: 'coord.example.org:50051',
      token: 'tok',
      name: 'donor-box',
      backend: 'auto',
      stateDir: '/home/donor/.gradpool',
      identityFile: '/home/donor/.gradpool/worker-donor-box.json',
      insecure: false,
      logLevel: 'info',
      cacheMaxBytes: 2 * 1024 ** 3,
    });
  });

  it('takes the shard cache cap from --cache-max-bytes over GRADPOOL_CACHE_MAX_BYTES, and says what is wrong with a bad one', () => {
    const base = { coordinator: 'coord:50051', token: 'tok' };
    expect(parse(base, { GRADPOOL_CACHE_MAX_BYTES: '512MiB' }).cacheMaxBytes).toBe(512 * 1024 ** 2);
    expect(parse({ ...base, cacheMaxBytes: '10G' }, { GRADPOOL_CACHE_MAX_BYTES: '512MiB' }).cacheMaxBytes).toBe(10 * 1024 ** 3);
    expect(parse({ ...base, cacheMaxBytes: '0' }).cacheMaxBytes).toBe(0);
    expect(errorOf(() => parse({ ...base, cacheMaxBytes: 'lots' })).message).toBe(
      '--cache-max-bytes: "lots" is not a size; use bytes or a number with KiB, MiB, GiB or TiB, e.g. 2GiB or 500MiB (0: no shard cache)',
    );
    expect(errorOf(() => parse(base, { GRADPOOL_CACHE_MAX_BYTES: '-1' })).message).toMatch(/^GRADPOOL_CACHE_MAX_BYTES: "-1" is not a size/);
  });

  it('takes the environment when a flag is absent, and flags over the environment', () => {
    const env = {
      GRADPOOL_COORDINATOR: '10.0.0.1:7000',
      GRADPOOL_TOKEN: 'env-token',
      GRADPOOL_WORKER_NAME: 'env name',
      GRADPOOL_BACKEND: 'WASM',
      GRADPOOL_STATE_DIR: '/var/lib/gp',
      GRADPOOL_INSECURE: 'true',
    };
    expect(parse({}, env)).toMatchObject({
      coordinator: '10.0.0.1:7000',
      token: 'env-token',
      name: 'env name',
      backend: 'wasm',
      stateDir: '/var/lib/gp',
      identityFile: '/var/lib/gp/worker-env_name.json',
      insecure: true,
    });
    expect(parse({ coordinator: 'localhost:1', token: 'flag-token', name: 'flag', backend: 'cpu' }, env)).toMatchObject({
      coordinator: 'localhost:1',
      token: 'flag-token',
      name: 'flag',
      backend: 'cpu',
    });
  });

  it('names the flag and the variable of what is missing', () => {
    expect(errorOf(() => parse({ token: 't' })).message).toMatch(/--coordinator is required \(or set GRADPOOL_COORDINATOR\)/);
    expect(errorOf(() => parse({ coordinator: 'h:1' })).message).toMatch(/--token is required \(or set GRADPOOL_TOKEN\)/);
    expect(errorOf(() => parse({ coordinator: 'h:1', token: '  ' })).message).toMatch(/--token is required/);
  });

  it('names where a bad value came from', () => {
    expect(errorOf(() => parse({ coordinator: 'h:1', token: 't', backend: 'tpu' })).message).toBe(
      '--backend: unknown backend "tpu"; use one of auto, gpu, node, wasm, cpu',
    );
    expect(errorOf(() => parse({ coordinator: 'h:1', token: 't' }, { GRADPOOL_BACKEND: 'tpu' })).message).toMatch(/^GRADPOOL_BACKEND: unknown backend/);
    expect(errorOf(() => parse({ coordinator: 'h:1', token: 't', name: 'x'.repeat(65) })).message).toMatch(/^--name: .* 1\.\.64 printable/);
    expect(errorOf(() => parse({ coordinator: 'h:1', token: 't', name: 'tab\there' })).message).toMatch(/^--name/);
    expect(errorOf(() => parse({ coordinator: 'h:1', token: 'two words' })).message).toMatch(/^--token: the join token must be one word/);
    expect(errorOf(() => parse({ coordinator: 'h:1', token: 't', logLevel: 'loud' })).message).toMatch(/^--log-level: unknown log level/);
  });
});

describe('parseCoordinatorAddress', () => {
  it.each(['localhost:50051', '127.0.0.1:1', 'coord.example.org:65535', '[::1]:50051', 'a-b.c:80'])('accepts %s', (addr) => {
    expect(parseCoordinatorAddress(addr, '--coordinator')).toBe(addr);
  });

  it.each([
    ['localhost', 'missing port'],
    [':50051', 'missing port'],
    ['localhost:0', 'port must be 1..65535'],
    ['localhost:65536', 'port must be 1..65535'],
    ['localhost:http', 'port must be 1..65535'],
    ['http://localhost:50051', 'no scheme'],
    ['bad_host:1', 'not a host name'],
    ['-x:1', 'not a host name'],
  ])('rejects %s (%s)', (addr, why) => {
    const err = errorOf(() => parseCoordinatorAddress(addr, '--coordinator'));
    expect(err.message).toContain(why);
    expect(err.message).toMatch(/^--coordinator: .* expected HOST:PORT/);
  });
});

describe('BACKEND_NAMES', () => {
  it('are the backends libs/training knows, best first', () => {
    expect(BACKEND_NAMES).toEqual(BACKEND_ORDER);
  });
});

describe('parseByteSize', () => {
  it('reads bytes, and numbers with binary units', () => {
    expect(parseByteSize('1048576', 'x')).toBe(1024 ** 2);
    expect(parseByteSize(' 500 MiB ', 'x')).toBe(500 * 1024 ** 2);
    expect(parseByteSize('1.5g', 'x')).toBe(1.5 * 1024 ** 3);
    expect(parseByteSize('2GiB', 'x')).toBe(2 * 1024 ** 3);
    expect(parseByteSize('1T', 'x')).toBe(1024 ** 4);
    expect(parseByteSize('64k', 'x')).toBe(65536);
    expect(parseByteSize('0', 'x')).toBe(0);
  });

  it('refuses what is not a size, naming where it came from', () => {
    for (const bad of ['', 'GiB', '-5', '1e9', '2 GB', '3 lots', '1.2.3', '99999999999 TiB']) {
      expect(errorOf(() => parseByteSize(bad, '--cache-max-bytes')).message).toMatch(/^--cache-max-bytes: ".*" is not a size/);
    }
  });
});

describe('identityFileName', () => {
  it('keeps names safe for a file system', () => {
    expect(identityFileName('alice-gpu.1')).toBe('worker-alice-gpu.1.json');
    expect(identityFileName('../../etc/passwd')).toBe('worker-.._.._etc_passwd.json');
  });
});
