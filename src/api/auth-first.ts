/**
 * Authentication before the body. Routes declare their credential check as a preHandler, which
 * fastify runs after reading and parsing the body: a client with no valid token could hold a
 * connection by sending a body slowly. Every route's authentication hooks (auth.ts) move to
 * onRequest, and a refused request that still has a body coming gets `Connection: close`, so
 * node closes the socket once the 401/403 is written instead of reading the rest.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { isAuthenticationHook } from './auth.ts';

type Hook = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function hasBody(req: FastifyRequest): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The hook, closing the connection after the answer when it refuses a request with a body. */
function refusingCloses(hook: Hook): Hook {
  return async (req, reply) => {
    try {
      await hook(req, reply);
    } catch (err) {
      if (hasBody(req)) void reply.header('connection', 'close');
      throw err;
    }
  };
}

/** Installs the onRoute hook; call before any route is added. */
export function authenticateBeforeBody(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const pre = asList(route.preHandler as Hook | Hook[] | undefined);
    const auth = pre.filter(isAuthenticationHook);
    if (auth.length === 0) return;
    route.preHandler = pre.filter((h) => !isAuthenticationHook(h)) as RouteOptions['preHandler'];
    route.onRequest = [...auth.map(refusingCloses), ...asList(route.onRequest as Hook | Hook[] | undefined)] as RouteOptions['onRequest'];
  });
}
