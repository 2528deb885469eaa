/** HTTP routes of the CA: the public SPIFFE bundle, audited certificate listing, rotation, JWT-SVIDs. */
import { Metadata } from '@grpc/grpc-js';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type ApiAuth, authenticationHook } from '../api/auth.ts';
import { parseDuration } from '../config/duration.ts';
import type { WorkloadAuthenticator } from '../identity/index.ts';
import type { Clock } from '../lib/clock.ts';
import { MeshwardError } from '../lib/errors.ts';
import type { Authority } from './authority.ts';
import { spiffeBundle } from './bundle.ts';
import type { Issuer } from './issuer.ts';
import type { CertificateRecordStore } from './records.ts';
import { activationDelayMs, BUNDLE_REFRESH_HINT_S, SAFE_ACTIVATION_DELAY } from './rotation-delay.ts';

export interface CaRouteDeps {
  auth: ApiAuth;
  authority: Authority;
  issuer: Issuer;
  records: CertificateRecordStore;
  authenticator: WorkloadAuthenticator;
  clock: Clock;
  trustDomain: () => string;
  /** Applies a forced rotation at once (re-arms the rotator). */
  afterRotate: () => void;
  /** Runs a change of the authority: under the shared CA's lock when replicas share it (shared.ts). */
  mutate?: <T>(fn: (authority: Authority) => T) => Promise<T>;
  /** This replica among those sharing the CA: its id and whether it leads rotations. */
  replica?: () => { id: string; leader: boolean };
}

const REFRESH_HINT_S = BUNDLE_REFRESH_HINT_S;

const CertificatesQuery = Type.Object({
  spiffeId: Type.Optional(Type.String()),
  namespace: Type.Optional(Type.String()),
  serviceAccount: Type.Optional(Type.String()),
  serial: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]+$' })),
  validAt: Type.Optional(Type.String({ description: 'RFC 3339 time, or "now": only certificates valid then.' })),
  issuedAfter: Type.Optional(Type.String({ format: 'date-time' })),
  issuedBefore: Type.Optional(Type.String({ format: 'date-time' })),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String()),
});

const CertificateRecordV1 = Type.Object({
  serial: Type.String(), spiffeId: Type.String(), notBefore: Type.String(), notAfter: Type.String(), issuedAt: Type.String(),
  requestedBy: Type.String(), method: Type.String(), caSlot: Type.String(),
});

function time(text: string | undefined, now: number, field: string): number | undefined {
  if (text === undefined) return undefined;
  if (text === 'now') return now;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new MeshwardError('INVALID_ARGUMENT', `${field}: "${text}" is not an RFC 3339 time`);
  return t;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The workload a /v1/svids/jwt request authenticated as (set by its onRequest hook). */
const workloadOf = new WeakMap<FastifyRequest, Awaited<ReturnType<WorkloadAuthenticator['authenticate']>>>();

export function caRoutes(app: FastifyInstance, d: CaRouteDeps): void {
  app.get('/v1/bundle', {
    schema: { tags: ['ca'], summary: 'The trust bundle as a SPIFFE bundle (JWKS: x509-svid roots, jwt-svid keys). Public.' },
  }, async (_req, reply) => {
    reply.header('cache-control', `max-age=${REFRESH_HINT_S}`);
    return spiffeBundle(d.authority.bundle(), REFRESH_HINT_S);
  });

  app.get('/v1/bundle.pem', {
    schema: { tags: ['ca'], summary: 'The trusted roots as PEM. Public.' },
  }, async (_req, reply) => reply.type('application/x-pem-file').send(d.authority.bundle().rootsPem));

  app.get('/v1/certificates', {
    preHandler: d.auth.require('auditor'),
    schema: {
      tags: ['ca'], summary: 'Issued certificates, newest first (auditor or admin token).', security: [{ bearer: [] }],
      querystring: CertificatesQuery,
      response: { 200: Type.Object({ certificates: Type.Array(CertificateRecordV1), nextCursor: Type.Optional(Type.String()) }) },
    },
  }, async (req) => {
    const q = req.query as typeof CertificatesQuery.static;
    const now = d.clock.now();
    const { records, nextCursor } = await d.records.list({
      spiffeId: q.spiffeId, namespace: q.namespace, serviceAccount: q.serviceAccount, serial: q.serial,
      validAt: time(q.validAt, now, 'validAt'), issuedAfter: time(q.issuedAfter, now, 'issuedAfter'), issuedBefore: time(q.issuedBefore, now, 'issuedBefore'),
      limit: q.limit, cursor: q.cursor,
    });
    return {
      certificates: records.map((r) => ({ ...r, notBefore: iso(r.notBefore), notAfter: iso(r.notAfter), issuedAt: iso(r.issuedAt) })),
      ...(nextCursor ? { nextCursor } : {}),
    };
  });

  app.get('/v1/ca', {
    preHandler: d.auth.require('operator'),
    schema: { tags: ['ca'], summary: 'CA mode, bundle sequence and slots with their rotation phase (operator or admin token).', security: [{ bearer: [] }] },
  }, async () => ({ mode: d.authority.mode, trustDomain: d.trustDomain(), bundleSequence: d.authority.bundle().sequence, slots: d.authority.slots(), ...(d.replica ? { replica: d.replica() } : {}) }));

  app.post('/v1/ca/rotate', {
    preHandler: d.auth.require('admin'),
    schema: {
      tags: ['ca'], security: [{ bearer: [] }],
      summary: `Force a CA rotation: prepare the next CA now (published in the bundle), activate it after \`activateAfter\` (default ${SAFE_ACTIVATION_DELAY}, as \`meshward ca rotate\`; "0s" activates at once) (admin token).`,
      body: Type.Optional(Type.Object({
        newRoot: Type.Optional(Type.Boolean()),
        activateAfter: Type.Optional(Type.String({ pattern: '^(0|(\\d+(\\.\\d+)?(ms|s|m|h|d))+)$', description: `Delay before the prepared CA signs (default ${SAFE_ACTIVATION_DELAY}: sidecars must hold the new root first); "0s" or "0" at once.` })),
      })),
    },
  }, async (req) => {
    const body = (req.body ?? {}) as { newRoot?: boolean; activateAfter?: string };
    const activateAfterMs = activationDelayMs(body.activateAfter);
    const rotate = (authority: Authority) => authority.rotate({ newRoot: body.newRoot, activateAfterMs });
    const slot = d.mutate ? await d.mutate(rotate) : rotate(d.authority);
    // Read before afterRotate: an immediate activation turns the slot active and drops its activateAt.
    const activatesAt = slot.activateAt!;
    d.afterRotate();
    return { prepared: slot, activatesAt, slots: d.authority.slots() };
  });

  app.post('/v1/svids/jwt', {
    // The workload's token is checked at onRequest (authenticationHook), before the body is read
    // and validated: a caller without a valid token gets 401, never the body schema's details.
    preHandler: authenticationHook(async (req) => {
      const md = new Metadata();
      if (req.headers.authorization) md.set('authorization', req.headers.authorization);
      workloadOf.set(req, await d.authenticator.authenticate(md));
    }),
    schema: {
      tags: ['ca'], summary: 'A JWT-SVID for the calling workload (Authorization: Bearer <service-account or bootstrap token>).', security: [{ bearer: [] }],
      body: Type.Object({ audience: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }), ttl: Type.Optional(Type.String()) }),
    },
  }, async (req) => {
    const identity = workloadOf.get(req)!;
    const body = req.body as { audience: string[]; ttl?: string };
    const { token, expiresAt } = await d.issuer.issueJwt(identity.spiffeId, body.audience, body.ttl ? parseDuration(body.ttl) : undefined);
    return { spiffeId: identity.spiffeId, token, expiresAt: iso(expiresAt) };
  });
}
