import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { PermissionDeniedError, UnauthenticatedError } from '../errors.js';
import { ApiKeyService } from '../services/api-key.service.js';
import { PUBLIC_ROUTE, ROUTE_ROLES, type AuthenticatedRequest } from './auth.decorators.js';
import type { ApiKeyRole } from './principal.js';

/** Reads `Authorization: Bearer <key>` (or `x-api-key`). */
export function presentedKey(headers: AuthenticatedRequest['headers']): string | undefined {
  const auth = headers['authorization'];
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const x = headers['x-api-key'];
  return typeof x === 'string' && x.length > 0 ? x : undefined;
}

/** Global guard: every route needs a valid API key unless marked @Public(); @Roles narrows it. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeys: ApiKeyService,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const req = ctx.switchToHttp().getRequest<AuthenticatedRequest>();
    const key = presentedKey(req.headers);
    if (!key) throw new UnauthenticatedError('missing API key: send "Authorization: Bearer <key>"');
    const principal = await this.apiKeys.authenticate(key);
    const roles = this.reflector.getAllAndOverride<ApiKeyRole[] | undefined>(ROUTE_ROLES, targets);
    if (roles && !roles.includes(principal.role)) {
      throw new PermissionDeniedError(`this route needs role ${roles.join(' or ')}; the key has role ${principal.role}`);
    }
    req.principal = principal;
    return true;
  }
}
