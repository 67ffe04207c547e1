import { Injectable } from '@nestjs/common';
import { NotFoundError } from '../errors.js';
import { GroupRepository } from '../repositories/group.repository.js';
import { JoinTokenRepository, type JoinTokenRow } from '../repositories/join-token.repository.js';
import { displayPrefix, generateSecret, hashSecret, KEY_PREFIX } from '../secrets.js';

export interface JoinTokenView {
  id: string;
  groupId: string;
  name: string;
  prefix: string;
  expiresAt: string | null;
  maxUses: number | null;
  uses: number;
  createdAt: string;
  revokedAt: string | null;
  /** Whether a worker could register with it now. */
  usable: boolean;
}

export function toJoinTokenView(t: JoinTokenRow, now = new Date()): JoinTokenView {
  return {
    id: t.id,
    groupId: t.groupId,
    name: t.name,
    prefix: t.prefix,
    expiresAt: t.expiresAt?.toISOString() ?? null,
    maxUses: t.maxUses,
    uses: t.uses,
    createdAt: t.createdAt.toISOString(),
    revokedAt: t.revokedAt?.toISOString() ?? null,
    usable: !t.revokedAt && (!t.expiresAt || t.expiresAt > now) && (t.maxUses === null || t.uses < t.maxUses),
  };
}

@Injectable()
export class JoinTokenService {
  constructor(
    private readonly groups: GroupRepository,
    private readonly tokens: JoinTokenRepository,
  ) {}

  /** Creates a join token; its plaintext is returned here and never again. */
  async create(
    groupId: string,
    input: { name?: string; expiresAt?: Date; maxUses?: number },
  ): Promise<{ token: string; view: JoinTokenView }> {
    await this.requireGroup(groupId);
    const token = generateSecret(KEY_PREFIX.joinToken);
    const row = await this.tokens.insert({
      groupId,
      name: input.name ?? '',
      tokenHash: hashSecret(token),
      prefix: displayPrefix(token),
      expiresAt: input.expiresAt ?? null,
      maxUses: input.maxUses ?? null,
    });
    return { token, view: toJoinTokenView(row) };
  }

  async list(groupId: string): Promise<JoinTokenView[]> {
    await this.requireGroup(groupId);
    return (await this.tokens.listByGroup(groupId)).map((t) => toJoinTokenView(t));
  }

  async revoke(groupId: string, tokenId: string): Promise<JoinTokenView> {
    const row = await this.tokens.revoke(groupId, tokenId);
    if (!row) throw new NotFoundError(`join token ${tokenId} not found in group ${groupId}`);
    return toJoinTokenView(row);
  }

  private async requireGroup(groupId: string): Promise<void> {
    if (!(await this.groups.findById(groupId))) throw new NotFoundError(`group ${groupId} not found`);
  }
}
