/**
 * The auditor API (fastify): list, fetch, export, stats and verify decision records. Every route
 * requires the `auditor` role (or admin): a bearer token, or a client certificate with an auditor
 * SPIFFE ID (see client-cert.ts).
 */
import { Readable } from 'node:stream';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';
import { parseDuration } from '../config/index.ts';
import type { SignedCheckpoint } from './checkpoint.ts';
import { AuditInvalidQueryError } from './errors.ts';
import { EXPORT_CONTENT_TYPES, type ExportFormat, formatExport } from './export.ts';
import { type AuditQueryParams, DECISION_OUTCOMES, MAX_PAGE_SIZE, parseQuery, refuseNulByte } from './query.ts';
import { decisionStats, exportPages, getDecision, queryDecisions, verifyChain } from './reader.ts';
import type { AuditStore } from './store.ts';

export interface AuditRoutesDeps {
  store: () => AuditStore;
  requireAuditor: preHandlerAsyncHookHandler;
  now: () => number;
  /** The signed checkpoints published by this process (newest first) and the key that signs them. */
  checkpoints?: () => { keyId: string; publicKey: string; checkpoints: readonly SignedCheckpoint[] };
}

const Opt = <T extends TSchema>(t: T) => Type.Optional(t);

const MatchedPolicySchema = Type.Object({
  kind: Type.String(), namespace: Type.String(), name: Type.String(),
  action: Opt(Type.String()), rule: Opt(Type.Integer()), dryRun: Opt(Type.Boolean()), effect: Opt(Type.String()), bundle: Opt(Type.Object({ name: Type.String(), revision: Type.String() })),
});

export const StoredDecisionSchema = Type.Object({
  seq: Type.Integer(),
  decisionId: Type.String(),
  time: Type.Integer({ description: 'Milliseconds since the epoch.' }),
  decision: Type.Union(DECISION_OUTCOMES.map((d) => Type.Literal(d))),
  reason: Type.String(),
  status: Type.Integer(),
  matchedPolicies: Type.Array(MatchedPolicySchema),
  configVersion: Type.String(),
  sourcePrincipal: Opt(Type.String()),
  destination: Opt(Type.String()),
  method: Opt(Type.String()),
  host: Opt(Type.String()),
  path: Opt(Type.String()),
  requestId: Opt(Type.String()),
  requestPrincipal: Opt(Type.String()),
  limit: Opt(Type.String()),
  latencyUs: Type.Number(),
  bundles: Opt(Type.Record(Type.String(), Type.Object({ revision: Type.String() }), { description: 'Revisions of the OPA bundles evaluated, by bundle (as OPA decision logs).' })),
  input: Opt(Type.Unknown({ description: 'The policy input, masked.' })),
  masked: Opt(Type.Array(Type.String(), { description: 'JSON pointers of redacted or removed values.' })),
  unreadable: Opt(Type.String({ description: 'Present when the stored body could not be read as a record: what was wrong (fields then come from the columns).' })),
  hash: Type.String(),
  prevHash: Type.String(),
});

const FILTER_PROPERTIES = {
  from: Opt(Type.String({ description: 'Inclusive start: ISO 8601, epoch ms, or a duration ago (24h).' })),
  to: Opt(Type.String({ description: 'Exclusive end, same forms as from.' })),
  decision: Opt(Type.String({ description: `Comma-separated outcomes: ${DECISION_OUTCOMES.join(', ')}.` })),
  principal: Opt(Type.String({ description: 'Source or request principal, exact.' })),
  pathPrefix: Opt(Type.String()),
  policy: Opt(Type.String({ description: 'namespace/name, or name in any namespace.' })),
  configVersion: Opt(Type.String()),
};

const ListQuery = Type.Object({
  ...FILTER_PROPERTIES,
  order: Opt(Type.Union([Type.Literal('desc'), Type.Literal('asc')], { description: 'desc (newest first, default) or asc.' })),
  limit: Opt(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: 100 })),
  cursor: Opt(Type.String({ description: 'nextCursor of the previous page.' })),
});

const ExportQuery = Type.Object({
  ...FILTER_PROPERTIES,
  format: Opt(Type.Union([Type.Literal('ndjson'), Type.Literal('csv')], { default: 'ndjson' })),
  order: Opt(Type.Union([Type.Literal('asc'), Type.Literal('desc')], { description: 'asc (oldest first, default) or desc.' })),
  limit: Opt(Type.Integer({ minimum: 1, description: 'At most this many records (default: all).' })),
});

const StatsQuery = Type.Object({
  ...FILTER_PROPERTIES,
  interval: Opt(Type.String({ default: '1h', description: 'Bucket width, a duration (1m, 1h, 1d).' })),
});

const ErrorSchema = Type.Object({ code: Type.String(), message: Type.String() });
const AUTH_ERRORS = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema };

/** Unknown parameters are refused: a misspelt filter must not silently return everything. */
function refuseUnknown(query: object, schema: { properties: object }): void {
  for (const key of Object.keys(query)) {
    if (!Object.hasOwn(schema.properties, key)) throw new AuditInvalidQueryError(key, `unknown query parameter (known: ${Object.keys(schema.properties).join(', ')})`);
  }
}

export function auditRoutes(app: FastifyInstance, deps: AuditRoutesDeps): void {
  const common = { preHandler: deps.requireAuditor };
  const security = [{ bearer: [] }];

  app.get<{ Querystring: Static<typeof ListQuery> }>('/v1/decisions', {
    ...common,
    schema: {
      tags: ['audit'], summary: 'Decision records matching the filters, newest first, with keyset pagination.', security,
      querystring: ListQuery,
      response: { 200: Type.Object({ records: Type.Array(StoredDecisionSchema), nextCursor: Opt(Type.String()) }), ...AUTH_ERRORS },
    },
  }, async (req) => {
    refuseUnknown(req.query, ListQuery);
    return queryDecisions(deps.store(), parseQuery(req.query as AuditQueryParams, deps.now()));
  });

  app.get<{ Querystring: Static<typeof ExportQuery> }>('/v1/decisions/export', {
    ...common,
    schema: {
      tags: ['audit'], summary: 'Streams every matching record as NDJSON or CSV, oldest first.', security,
      querystring: ExportQuery,
      produces: [EXPORT_CONTENT_TYPES.ndjson, EXPORT_CONTENT_TYPES.csv],
      response: AUTH_ERRORS,
    },
  }, async (req, reply) => {
    refuseUnknown(req.query, ExportQuery);
    const { format = 'ndjson', limit, ...filters } = req.query;
    const q = { ...parseQuery({ ...filters, order: filters.order ?? 'asc' }, deps.now()), ...(limit ? { limit } : {}) };
    const f = format as ExportFormat;
    const stream = Readable.from(formatExport(exportPages(deps.store(), q), f));
    return reply
      .type(EXPORT_CONTENT_TYPES[f])
      .header('content-disposition', `attachment; filename="decisions.${f}"`)
      .header('cache-control', 'no-store')
      .send(stream);
  });

  app.get<{ Querystring: Static<typeof StatsQuery> }>('/v1/decisions/stats', {
    ...common,
    schema: {
      tags: ['audit'], summary: 'Counts per decision per interval (default: the last 24 hours by hour).', security,
      querystring: StatsQuery,
      response: {
        200: Type.Object({
          from: Type.String(), to: Type.String(), intervalMs: Type.Integer(), total: Type.Integer(),
          intervals: Type.Array(Type.Object({ start: Type.String(), total: Type.Integer(), counts: Type.Record(Type.String(), Type.Integer()) })),
        }),
        ...AUTH_ERRORS,
      },
    },
  }, async (req) => {
    refuseUnknown(req.query, StatsQuery);
    const { interval = '1h', ...filters } = req.query;
    const now = deps.now();
    const q = parseQuery(filters, now);
    let intervalMs: number;
    try {
      intervalMs = parseDuration(interval);
    } catch {
      throw new AuditInvalidQueryError('interval', `"${interval}" is not a duration (e.g. 1m, 1h, 1d)`);
    }
    const to = q.to ?? now;
    const from = q.from ?? to - parseDuration('24h');
    return decisionStats(deps.store(), { ...q, from, to }, intervalMs);
  });

  app.get('/v1/decisions/verify', {
    ...common,
    schema: {
      tags: ['audit'], summary: 'Re-computes the hash chain; reports edited, inserted and deleted records.', security,
      response: {
        200: Type.Object({
          ok: Type.Boolean(), checked: Type.Integer(), firstSeq: Opt(Type.Integer()), lastSeq: Opt(Type.Integer()), headHash: Type.String(),
          anchor: Type.Object({ seq: Type.Integer(), hash: Type.String() }),
          findings: Type.Array(Type.Object({ kind: Type.String(), seq: Type.Integer(), decisionId: Opt(Type.String()), message: Type.String() })),
          truncated: Type.Boolean(),
        }),
        ...AUTH_ERRORS,
      },
    },
  }, async () => verifyChain(deps.store()));

  const checkpoints = deps.checkpoints;
  if (checkpoints) {
    const CheckpointSchema = Type.Object({ v: Type.Literal(1), seq: Type.Integer(), hash: Type.String(), time: Type.Integer(), keyId: Type.String(), signature: Type.String() });
    app.get('/v1/audit/checkpoints', {
      ...common,
      schema: {
        tags: ['audit'], summary: 'Signed checkpoints of the audit chain head (newest first, this replica, last 100) and the Ed25519 public key that signs them.', security,
        response: { 200: Type.Object({ keyId: Type.String(), publicKey: Type.String(), checkpoints: Type.Array(CheckpointSchema) }), ...AUTH_ERRORS },
      },
    }, async () => checkpoints());
  }

  app.get<{ Params: { id: string } }>('/v1/decisions/:id', {
    ...common,
    schema: {
      tags: ['audit'], summary: 'One decision record by decision id (dynamic_metadata.decision_id).', security,
      params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) }),
      response: { 200: StoredDecisionSchema, 404: ErrorSchema, ...AUTH_ERRORS },
    },
  }, async (req) => {
    refuseNulByte('id', req.params.id);
    return getDecision(deps.store(), req.params.id);
  });
}
