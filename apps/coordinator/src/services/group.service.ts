import { Injectable } from '@nestjs/common';
import { ConflictError, NotFoundError } from '../errors.js';
import { GroupRepository, type GroupRow } from '../repositories/group.repository.js';

export interface GroupView {
  id: string;
  name: string;
  description: string;
  allowPublicJobs: boolean;
  createdAt: string;
}

export function toGroupView(g: GroupRow): GroupView {
  return {
    id: g.id,
    name: g.name,
    description: g.description,
    allowPublicJobs: g.allowPublicJobs,
    createdAt: g.createdAt.toISOString(),
  };
}

@Injectable()
export class GroupService {
  constructor(private readonly groups: GroupRepository) {}

  async create(input: { name: string; description?: string; allowPublicJobs?: boolean }): Promise<GroupView> {
    const row = await this.groups.insert(input);
    if (!row) throw new ConflictError(`a group named "${input.name}" already exists`);
    return toGroupView(row);
  }

  /** All groups, or only those in `ids`. */
  async list(ids?: readonly string[]): Promise<GroupView[]> {
    return (await this.groups.list(ids)).map(toGroupView);
  }

  async get(id: string): Promise<GroupView> {
    const row = await this.groups.findById(id);
    if (!row) throw new NotFoundError(`group ${id} not found`);
    return toGroupView(row);
  }
}
