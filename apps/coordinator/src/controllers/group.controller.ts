import { Body, Controller, Delete, Get, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { CurrentPrincipal, Roles } from '../auth/auth.decorators.js';
import { assertGroupAccess, visibleGroups, type Principal } from '../auth/principal.js';
import { InvalidArgumentError } from '../errors.js';
import { openApiSchema, ZodValidationPipe } from '../http/zod-validation.pipe.js';
import { GroupService } from '../services/group.service.js';
import { JoinTokenService } from '../services/join-token.service.js';

export const CreateGroupBody = z.strictObject({
  name: z
    .string()
    .trim()
    .min(1, { error: 'must not be empty', abort: true })
    .max(64, { error: 'at most 64 characters', abort: true })
    .regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, 'letters, digits, space, dot, underscore and dash, starting with a letter or digit'),
  description: z.string().max(1000, 'at most 1000 characters').optional(),
  allowPublicJobs: z.boolean().optional(),
});

const TEN_YEARS_S = 10 * 365 * 24 * 3600;
export const CreateJoinTokenBody = z
  .strictObject({
    name: z.string().trim().max(100, 'at most 100 characters').optional(),
    /** Absolute expiry (ISO 8601 with offset). */
    expiresAt: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time' }).optional(),
    /** Relative expiry, seconds from now. */
    expiresInSeconds: z.number().int('must be an integer').positive('must be positive').max(TEN_YEARS_S).optional(),
    /** How many workers may register with it; unlimited when absent. */
    maxUses: z.number().int('must be an integer').positive('must be positive').max(1_000_000).optional(),
  })
  .refine((b) => !(b.expiresAt && b.expiresInSeconds), { message: 'give expiresAt or expiresInSeconds, not both', path: ['expiresAt'] });

@ApiTags('groups')
@ApiBearerAuth()
@Controller('v1/groups')
export class GroupController {
  constructor(
    private readonly groups: GroupService,
    private readonly tokens: JoinTokenService,
  ) {}

  @Post()
  @Roles('admin')
  @ApiBody({ schema: openApiSchema(CreateGroupBody) })
  create(@Body(new ZodValidationPipe(CreateGroupBody)) body: z.output<typeof CreateGroupBody>) {
    return this.groups.create(body);
  }

  @Get()
  list(@CurrentPrincipal() p: Principal) {
    return this.groups.list(visibleGroups(p));
  }

  @Get(':id')
  get(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    assertGroupAccess(p, id, 'read');
    return this.groups.get(id);
  }

  /** Creates a join token. Its plaintext (`token`) is in this response only. */
  @Post(':id/tokens')
  @Roles('admin', 'group-admin')
  @ApiBody({ schema: openApiSchema(CreateJoinTokenBody) })
  async createToken(
    @CurrentPrincipal() p: Principal,
    @Param('id') id: string,
    @Body(new ZodValidationPipe(CreateJoinTokenBody)) body: z.output<typeof CreateJoinTokenBody>,
  ) {
    assertGroupAccess(p, id, 'write');
    const expiresAt = body.expiresAt
      ? new Date(body.expiresAt)
      : body.expiresInSeconds
        ? new Date(Date.now() + body.expiresInSeconds * 1000)
        : undefined;
    if (expiresAt && expiresAt.getTime() <= Date.now()) throw new InvalidArgumentError('expiresAt: must be in the future');
    const { token, view } = await this.tokens.create(id, { name: body.name, expiresAt, maxUses: body.maxUses });
    return { ...view, token };
  }

  @Get(':id/tokens')
  listTokens(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    assertGroupAccess(p, id, 'read');
    return this.tokens.list(id);
  }

  @Delete(':id/tokens/:tokenId')
  @Roles('admin', 'group-admin')
  revokeToken(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Param('tokenId') tokenId: string) {
    assertGroupAccess(p, id, 'write');
    return this.tokens.revoke(id, tokenId);
  }
}
