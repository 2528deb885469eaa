/**
 * HTTP API of limits: remaining quota per key, the audited operator adjustment, and its history.
 * Every route is authenticated: quotas reveal who calls what; adjustments change enforcement.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ApiAuth, authenticationHook, principalOf, unauthenticated } from '../api/auth.ts';
import { MeshwardError } from '../lib/errors.ts';
import type { QuotaAdjustment } from './quota/store.ts';
import type { QuotaService } from './quota/service.ts';

const QuotaStatus = Type.Object({
  policy: Type.String(), subject: Type.String(), period: Type.String(), periodId: Type.String(),
  limit: Type.Integer(), used: Type.Integer(), remaining: Type.Integer(), resetAt: Type.Integer(),
  store: Type.String(), shadowMode: Type.Boolean(),
});

const Adjustment = Type.Object({
  id: Type.String(), time: Type.Integer(), actor: Type.String(), role: Type.String(), policy: Type.String(),
  subject: Type.String(), period: Type.String(), action: Type.String(), before: Type.Integer(), after: Type.Integer(), reason: Type.String(),
});

const AdjustBody = Type.Object({
  /** `namespace/name` of the QuotaPolicy. */
  policy: Type.String({ minLength: 1 }),
  action: Type.Union([Type.Literal('reset'), Type.Literal('set'), Type.Literal('add')]),
  /** For `set`: the new used count. */
  used: Type.Optional(Type.Integer({ minimum: 0 })),
  /** For `add`: added to used (negative grants extra requests). */
  delta: Type.Optional(Type.Integer()),
  /** Why (recorded with the adjustment). */
  reason: Type.String({ minLength: 1, maxLength: 1000 }),
}, { additionalProperties: false });
type AdjustBody = Static<typeof AdjustBody>;

const KeyParams = Type.Object({ key: Type.String({ minLength: 1, maxLength: 4096 }) });

function toAdjustment(body: AdjustBody): QuotaAdjustment {
  if (body.action === 'reset') return { action: 'reset' };
  if (body.action === 'set') {
    if (body.used === undefined) throw new MeshwardError('INVALID_ARGUMENT', 'action "set" needs "used" (the new used count)');
    return { action: 'set', used: body.used };
  }
  if (body.delta === undefined) throw new MeshwardError('INVALID_ARGUMENT', 'action "add" needs "delta" (added to used; negative grants more)');
  return { action: 'add', delta: body.delta };
}

/** Any authenticated principal (admin, operator or auditor). */
function requireAny(auth: ApiAuth) {
  return authenticationHook(async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const p = auth.authenticate(req);
    if (!p) throw unauthenticated(req);
    (req as FastifyRequest & { principal?: unknown }).principal = p;
  });
}

export function quotaRoutes(app: FastifyInstance, deps: { auth: ApiAuth; quotas: () => QuotaService }): void {
  app.get('/v1/quotas/:key', {
    preHandler: requireAny(deps.auth),
    schema: {
      tags: ['limits'],
      summary: 'Remaining quota of a key (a principal, or an API key for header-keyed policies) under every QuotaPolicy, or `?policy=namespace/name`.',
      security: [{ bearer: [] }],
      params: KeyParams,
      querystring: Type.Object({ policy: Type.Optional(Type.String()) }),
      response: { 200: Type.Object({ quotas: Type.Array(QuotaStatus) }) },
    },
  }, async (req) => {
    const { key } = req.params as Static<typeof KeyParams>;
    const { policy } = req.query as { policy?: string };
    return { quotas: await deps.quotas().status(key, policy) };
  });

  app.post('/v1/quotas/:key', {
    preHandler: deps.auth.require('operator'),
    schema: {
      tags: ['limits'],
      summary: 'Reset or adjust a key\'s current-period usage under one QuotaPolicy (operator or admin). Every call is recorded with who, when, what and why.',
      security: [{ bearer: [] }],
      params: KeyParams,
      body: AdjustBody,
      response: { 200: Type.Object({ quota: QuotaStatus, adjustment: Adjustment }) },
    },
  }, async (req) => {
    const { key } = req.params as Static<typeof KeyParams>;
    const body = req.body as AdjustBody;
    const principal = principalOf(req)!;
    const r = await deps.quotas().adjust(key, body.policy, toAdjustment(body), principal, body.reason);
    return { quota: r.status, adjustment: r.adjustment };
  });

  app.get('/v1/quota-adjustments', {
    preHandler: requireAny(deps.auth),
    schema: {
      tags: ['limits'],
      summary: 'Recorded quota adjustments, most recent first (any authenticated role).',
      security: [{ bearer: [] }],
      querystring: Type.Object({ policy: Type.Optional(Type.String()), key: Type.Optional(Type.String()), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }),
      response: { 200: Type.Object({ adjustments: Type.Array(Adjustment) }) },
    },
  }, async (req) => {
    const q = req.query as { policy?: string; key?: string; limit: number };
    return { adjustments: await deps.quotas().history({ ...(q.policy ? { policy: q.policy } : {}), ...(q.key ? { key: q.key } : {}), limit: q.limit }) };
  });
}
