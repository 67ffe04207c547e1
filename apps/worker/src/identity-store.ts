/**
 * Keeps the worker's identity (id + session secret) between runs, so that an agent restarted
 * within its lease keeps its place. The file holds a secret: mode 0600 in a 0700 folder.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface StoredIdentity {
  workerId: string;
  sessionSecret: string;
  groupId: string;
  /** The coordinator this identity belongs to (an identity means nothing to another one). */
  coordinator: string;
  savedAtMs: number;
}

export interface IdentityStore {
  load(): Promise<StoredIdentity | undefined>;
  save(identity: StoredIdentity): Promise<void>;
}

function isIdentity(v: unknown): v is StoredIdentity {
  const o = v as Record<string, unknown> | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    typeof o.workerId === 'string' &&
    typeof o.sessionSecret === 'string' &&
    typeof o.groupId === 'string' &&
    typeof o.coordinator === 'string' &&
    typeof o.savedAtMs === 'number'
  );
}

export class FileIdentityStore implements IdentityStore {
  constructor(readonly path: string) {}

  /** The stored identity, or undefined when there is none or it is unreadable (then we register afresh). */
  async load(): Promise<StoredIdentity | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      return isIdentity(parsed) ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  /** Writes atomically (temp file + rename) so a crash never leaves half a file. */
  async save(identity: StoredIdentity): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(identity, null, 2)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, this.path);
  }
}

/** Keeps the identity in memory only (tests, `--state-dir` unset in embedded use). */
export class MemoryIdentityStore implements IdentityStore {
  constructor(private identity?: StoredIdentity) {}
  async load(): Promise<StoredIdentity | undefined> {
    return this.identity;
  }
  async save(identity: StoredIdentity): Promise<void> {
    this.identity = identity;
  }
}
