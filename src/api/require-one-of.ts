import type { FastifyReply, FastifyRequest } from 'fastify';
import { MeshwardError } from '../lib/errors.ts';
import { type ApiAuth, type ApiRole, authenticationHook } from './auth.ts';

/**
 * An authentication hook passing a principal of any of `roles` (admin always passes): 401 without
 * valid credentials, 403 naming the roles otherwise.
 */
export function requireOneOf(auth: ApiAuth, roles: readonly ApiRole[]) {
  const hooks = roles.map((r) => auth.require(r));
  return authenticationHook(async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    let denied: unknown;
    for (const hook of hooks) {
      try {
        return await hook(req, reply);
      } catch (err) {
        if (!(err instanceof MeshwardError) || err.code !== 'PERMISSION_DENIED') throw err;
        denied = err;
      }
    }
    throw new MeshwardError('PERMISSION_DENIED', `this needs one of the roles ${roles.join(', ')} or admin`, { cause: denied });
  });
}
