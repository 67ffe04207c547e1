/**
 * The agent's configuration: command-line flags > environment > defaults, validated here so
 * that every error names the flag (and its variable) to fix.
 */
import type { BackendPreference } from '@gradpool/training';
import { join } from 'node:path';

/**
 * Backends `--backend` accepts besides `auto`: BACKEND_ORDER of libs/training (a test keeps them
 * equal), listed here so that parsing flags does not load TensorFlow.js.
 */
export const BACKEND_NAMES = ['gpu', 'node', 'wasm', 'cpu'] as const;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Environment variables read by `join` (flags win over them). */
export const ENV = {
  coordinator: 'GRADPOOL_COORDINATOR',
  token: 'GRADPOOL_TOKEN',
  name: 'GRADPOOL_WORKER_NAME',
  backend: 'GRADPOOL_BACKEND',
  stateDir: 'GRADPOOL_STATE_DIR',
  insecure: 'GRADPOOL_INSECURE',
  logLevel: 'GRADPOOL_LOG_LEVEL',
  cacheMaxBytes: 'GRADPOOL_CACHE_MAX_BYTES',
} as const;

/** Default size cap of the shard cache (`--cache-max-bytes`): 2 GiB. */
export const DEFAULT_CACHE_MAX_BYTES = 2 * 1024 ** 3;

export interface JoinFlags {
  coordinator?: string;
  token?: string;
  name?: string;
  backend?: string;
  stateDir?: string;
  insecure?: boolean;
  logLevel?: string;
  cacheMaxBytes?: string;
}

export interface JoinDefaults {
  /** Default worker name (the host name). */
  hostname: string;
  /** Home directory; the default state dir is `<home>/.gradpool`. */
  homedir: string;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface JoinConfig {
  /** `host:port` as given (gRPC target). */
  coordinator: string;
  token: string;
  name: string;
  backend: BackendPreference;
  stateDir: string;
  /** Where the worker's id and session secret are kept between runs (mode 0600). */
  identityFile: string;
  /** Plaintext gRPC (no TLS). */
  insecure: boolean;
  logLevel: LogLevel;
  /** Size cap of the shard cache in `<stateDir>/cache`, in bytes; 0: no cache. */
  cacheMaxBytes: number;
}

/** Display names: 1..64 printable characters (the proto's rule). */
const NAME_RE = /^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$/;
const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6_RE = /^\[[0-9A-Fa-f:.]+\]$/;

/** Checks `host:port` (or `[v6]:port`); returns it normalised (trimmed) or throws a ConfigError. */
export function parseCoordinatorAddress(raw: string, source: string): string {
  const value = raw.trim();
  const idx = value.lastIndexOf(':');
  const bad = (why: string) =>
    new ConfigError(`${source}: "${raw}" is not a coordinator address (${why}); expected HOST:PORT, e.g. coordinator.example.org:50051`);
  if (value.includes('://')) throw bad('no scheme, just host and port');
  if (idx <= 0) throw bad('missing port');
  const host = value.slice(0, idx);
  const portText = value.slice(idx + 1);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw bad('port must be 1..65535');
  if (!HOST_RE.test(host) && !IPV6_RE.test(host)) throw bad(`"${host}" is not a host name or IP address`);
  return value;
}

const BYTE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tib: 1024 ** 4 };

/**
 * A size in bytes: an integer, or a number with a binary unit (`512MiB`, `1.5G`, `10 GiB`;
 * K/M/G/T mean KiB/MiB/GiB/TiB). Returns whole bytes or throws a ConfigError naming `source`.
 */
export function parseByteSize(raw: string, source: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = m ? BYTE_UNITS[m[2].toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes))
    throw new ConfigError(`${source}: "${raw}" is not a size; use bytes or a number with KiB, MiB, GiB or TiB, e.g. 2GiB or 500MiB (0: no shard cache)`);
  return bytes;
}

/** A file-name-safe form of the worker name for the identity file. */
export function identityFileName(name: string): string {
  return `worker-${name.replace(/[^A-Za-z0-9._-]+/g, '_')}.json`;
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());
}

/** Builds the `join` config; throws ConfigError with a message naming the flag to fix. */
export function parseJoinConfig(flags: JoinFlags, env: Readonly<Record<string, string | undefined>>, defaults: JoinDefaults): JoinConfig {
  const pick = (flag: string | undefined, envName: string): { value: string | undefined; source: string } => {
    if (flag !== undefined) return { value: flag, source: `--${flagName(envName)}` };
    const e = env[envName];
    if (e !== undefined && e !== '') return { value: e, source: envName };
    return { value: undefined, source: `--${flagName(envName)}` };
  };

  const coord = pick(flags.coordinator, ENV.coordinator);
  if (coord.value === undefined || coord.value.trim() === '')
    throw new ConfigError(`--coordinator is required (or set ${ENV.coordinator}): the coordinator's gRPC address, HOST:PORT`);
  const coordinator = parseCoordinatorAddress(coord.value, coord.source);

  const tok = pick(flags.token, ENV.token);
  if (tok.value === undefined || tok.value.trim() === '')
    throw new ConfigError(`--token is required (or set ${ENV.token}): the join token your group admin gave you`);
  const token = tok.value.trim();
  if (/\s/.test(token) || token.length > 512) throw new ConfigError(`${tok.source}: the join token must be one word of at most 512 characters`);

  const nm = pick(flags.name, ENV.name);
  const name = (nm.value ?? defaults.hostname).trim();
  if (!NAME_RE.test(name))
    throw new ConfigError(`${nm.value === undefined ? '--name (default: host name)' : nm.source}: "${name}" is not a worker name; use 1..64 printable characters`);

  const be = pick(flags.backend, ENV.backend);
  const backendRaw = (be.value ?? 'auto').trim().toLowerCase();
  const allowed: readonly string[] = ['auto', ...BACKEND_NAMES];
  if (!allowed.includes(backendRaw)) throw new ConfigError(`${be.source}: unknown backend "${be.value}"; use one of ${allowed.join(', ')}`);
  const backend = backendRaw as BackendPreference;

  const sd = pick(flags.stateDir, ENV.stateDir);
  const stateDir = sd.value?.trim() || join(defaults.homedir, '.gradpool');

  const insecure = flags.insecure === true || truthy(env[ENV.insecure]);

  const ll = pick(flags.logLevel, ENV.logLevel);
  const levelRaw = (ll.value ?? 'info').trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(levelRaw))
    throw new ConfigError(`${ll.source}: unknown log level "${ll.value}"; use one of ${LOG_LEVELS.join(', ')}`);

  const cm = pick(flags.cacheMaxBytes, ENV.cacheMaxBytes);
  const cacheMaxBytes = cm.value === undefined ? DEFAULT_CACHE_MAX_BYTES : parseByteSize(cm.value, cm.source);

  return Object.freeze({
    coordinator,
    token,
    name,
    backend,
    stateDir,
    identityFile: join(stateDir, identityFileName(name)),
    insecure,
    logLevel: levelRaw as LogLevel,
    cacheMaxBytes,
  });
}

function flagName(envName: string): string {
  switch (envName) {
    case ENV.coordinator:
      return 'coordinator';
    case ENV.token:
      return 'token';
    case ENV.name:
      return 'name';
    case ENV.backend:
      return 'backend';
    case ENV.stateDir:
      return 'state-dir';
    case ENV.logLevel:
      return 'log-level';
    case ENV.cacheMaxBytes:
      return 'cache-max-bytes';
    default:
      return envName;
  }
}
