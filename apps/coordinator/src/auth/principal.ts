/** Who is calling the admin API, and what they may touch. */
import { PermissionDeniedError } from '../errors.js';

export const API_KEY_ROLES = ['admin', 'group-admin', 'viewer'] as const;
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];

export interface Principal {
  keyId: string;
  name: string;
  role: ApiKeyRole;
  /** The group a `group-admin` key administers; null for other roles. */
  groupId: string | null;
}

/**
 * Group scoping: admins touch every group; viewers read every group and write none;
 * group admins read and write their own group only.
 */
export function assertGroupAccess(p: Principal, groupId: string, mode: 'read' | 'write'): void {
  if (p.role === 'admin') return;
  if (p.role === 'viewer') {
    if (mode === 'read') return;
    throw new PermissionDeniedError('viewer keys are read-only');
  }
  if (p.groupId !== groupId) throw new PermissionDeniedError('this key administers another group');
}

/** The groups a principal may list: undefined for all. */
export function visibleGroups(p: Principal): string[] | undefined {
  return p.role === 'group-admin' ? [p.groupId ?? ''] : undefined;
}
