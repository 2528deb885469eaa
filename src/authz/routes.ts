/**
 * `POST /v1/authz/check`: a what-if check for operators. Runs the same pipeline on the serving
 * snapshot and returns the decision, the reason, every policy that matched (dry-run and AUDIT
 * included) and the CheckResponse Envoy would get — the answer to "why was this 403?" without
 * reproducing the request. Never audited as a decision (it is not traffic); the caller is logged.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';
import { principalOf } from '../api/auth.ts';
import { errorCodeOf } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { httpStatusOf } from './decision.ts';
import type { CheckRequestJson } from './input.ts';
import type { CheckFn } from './server.ts';

const CheckBody = Type.Object({
  attributes: Type.Object({}, { additionalProperties: true, description: 'AttributeContext as protojson (camelCase), as in the OPA-Envoy input.' }),
}, { additionalProperties: false });

export function authzRoutes(app: FastifyInstance, deps: { check: CheckFn; requireOperator: preHandlerAsyncHookHandler; logger: Logger; version: () => string | undefined }): void {
  app.post('/v1/authz/check', {
    preHandler: deps.requireOperator,
    schema: {
      tags: ['authz'],
      summary: 'What-if ext_authz check: the decision, reason, matched policies and CheckResponse for a request (operator or admin token; not audited).',
      security: [{ bearer: [] }],
      body: CheckBody,
    },
  }, async (req) => {
    const principal = principalOf(req);
    deps.logger.info({ caller: principal?.name }, 'what-if ext_authz check');
    try {
      const { outcome, response, record } = await deps.check(structuredClone(req.body) as CheckRequestJson, { record: false });
      return {
        decision: outcome.decision.outcome,
        status: httpStatusOf(outcome.decision),
        reason: outcome.decision.reason,
        ...(outcome.decidedBy ? { decidedBy: outcome.decidedBy } : {}),
        configVersion: record.configVersion,
        destination: record.destination,
        ...(record.requestPrincipal ? { requestPrincipal: record.requestPrincipal } : {}),
        matchedPolicies: record.matchedPolicies,
        response,
      };
    } catch (err) {
      // What Envoy would see is a gRPC error: report it (code and message) instead of failing the API call.
      return { decision: 'error', code: errorCodeOf(err), reason: err instanceof Error ? err.message : String(err), configVersion: deps.version() };
    }
  });
}
