import { Inject, Injectable } from '@nestjs/common';
import type { DbHandle } from '@gradpool/db';
import { sql } from 'drizzle-orm';
import type { ApiKeyRole, Principal } from '../auth/principal.js';
import { InvalidArgumentError, NotFoundError, UnauthenticatedError } from '../errors.js';
import { ApiKeyRepository, type ApiKeyRow } from '../repositories/api-key.repository.js';
import { GroupRepository } from '../repositories/group.repository.js';
import { displayPrefix, generateSecret, hashSecret, KEY_PREFIX } from '../secrets.js';
import { DATABASE } from '../tokens.js';

/** Serialises admin-key bootstrap between replicas starting at once. */
const BOOTSTRAP_LOCK = 0x67706b62; // "gpkb"

export interface ApiKeyView {
  id: string;
  name: string;
  role: ApiKeyRole;
  groupId: string | null;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export function toApiKeyView(r: ApiKeyRow): ApiKeyView {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    groupId: r.groupId,
    prefix: r.prefix,
    createdAt: r.createdAt.toISOString(),
    lastUsedAt: r.lastUsedAt?.toISOString() ?? null,
    revokedAt: r.revokedAt?.toISOString() ?? null,
  };
}

@Injectable()
export class ApiKeyService {
  constructor(
    @Inject(DATABASE) private readonly handle: DbHandle,
    private readonly keys: ApiKeyRepository,
    private readonly groups: GroupRepository,
  ) {}

  /** The principal a presented key stands for; UnauthenticatedError for unknown or revoked keys. */
  async authenticate(key: string): Promise<Principal> {
    const row = await this.keys.findByHash(hashSecret(key));
    if (!row) throw new UnauthenticatedError('unknown API key');
    if (row.revokedAt) throw new UnauthenticatedError('this API key has been revoked');
    await this.keys.touch(row.id);
    return { keyId: row.id, name: row.name, role: row.role, groupId: row.groupId };
  }

  /** Creates a key; its plaintext is returned here and never again. */
  async create(input: { name: string; role: ApiKeyRole; groupId?: string }): Promise<{ key: string; view: ApiKeyView }> {
    if (input.role === 'group-admin') {
      if (!input.groupId) throw new InvalidArgumentError('groupId: required for role group-admin');
      if (!(await this.groups.findById(input.groupId))) throw new NotFoundError(`group ${input.groupId} not found`);
    } else if (input.groupId) {
      throw new InvalidArgumentError(`groupId: only group-admin keys belong to a group`);
    }
    const key = generateSecret(KEY_PREFIX.apiKey);
    const row = await this.keys.insert({
      name: input.name,
      role: input.role,
      groupId: input.role === 'group-admin' ? input.groupId : null,
      keyHash: hashSecret(key),
      prefix: displayPrefix(key),
    });
    return { key, view: toApiKeyView(row) };
  }

  async list(): Promise<ApiKeyView[]> {
    return (await this.keys.list()).map(toApiKeyView);
  }

  async revoke(id: string): Promise<ApiKeyView> {
    const row = await this.keys.revoke(id);
    if (!row) throw new NotFoundError(`API key ${id} not found`);
    return toApiKeyView(row);
  }

  /**
   * Makes sure an admin can get in: registers `bootstrapKey` as an admin key if it is not known
   * yet, or, without one, generates an admin key when no active admin key exists. Returns the
   * generated key (to be printed once), if any.
   */
  async bootstrap(bootstrapKey: string | undefined): Promise<{ generatedKey?: string }> {
    return this.handle.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${BOOTSTRAP_LOCK})`);
      if (bootstrapKey) {
        const hash = hashSecret(bootstrapKey);
        if (!(await this.keys.findByHash(hash, tx))) {
          await this.keys.insert({ name: 'bootstrap', role: 'admin', keyHash: hash, prefix: displayPrefix(bootstrapKey) }, tx);
        }
        return {};
      }
      if ((await this.keys.countActiveAdmins(tx)) > 0) return {};
      const key = generateSecret(KEY_PREFIX.apiKey);
      await this.keys.insert({ name: 'generated-admin', role: 'admin', keyHash: hashSecret(key), prefix: displayPrefix(key) }, tx);
      return { generatedKey: key };
    });
  }
}
