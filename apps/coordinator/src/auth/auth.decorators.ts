import { createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';
import type { ApiKeyRole, Principal } from './principal.js';

export const PUBLIC_ROUTE = 'gradpool:public';
export const ROUTE_ROLES = 'gradpool:roles';

/** The route needs no API key (health, metrics, docs). */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);
/** Only keys with one of these roles may call the route (any valid key when absent). */
export const Roles = (...roles: ApiKeyRole[]) => SetMetadata(ROUTE_ROLES, roles);

export interface AuthenticatedRequest {
  principal?: Principal;
  headers: Record<string, string | string[] | undefined>;
}

/** The caller, as authenticated by ApiKeyGuard. */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const req = ctx.switchToHttp().getRequest<AuthenticatedRequest>();
  if (!req.principal) throw new Error('CurrentPrincipal used on a public route');
  return req.principal;
});
