/** `QuotaPolicy`: long-window budgets per principal or API key that survive restarts. */
import { Type, type Static } from '@sinclair/typebox';
import { Obj, Opt, WorkloadSelector } from './common.ts';
import type { KindDefinition } from './types.ts';

export const QuotaPolicySpec = Obj({
  selector: Opt(WorkloadSelector),
  /** What the budget is counted per. Header values (API keys) are stored only as a SHA-256 prefix. */
  subject: Obj({
    from: Type.Union([Type.Literal('sourcePrincipal'), Type.Literal('requestPrincipal'), Type.Literal('header')]),
    header: Opt(Type.String({ minLength: 1 })),
  }),
  limit: Type.Integer({ minimum: 0 }),
  period: Type.Union([Type.Literal('day'), Type.Literal('month')]),
  /** Requests counted (all if absent). */
  match: Opt(Obj({ pathPrefix: Opt(Type.String()), methods: Opt(Type.Array(Type.String())) })),
  /** `auto`: PostgreSQL when a database URL is given (shared by replicas), else SQLite. */
  store: Type.Union([Type.Literal('auto'), Type.Literal('sqlite'), Type.Literal('redis'), Type.Literal('postgres')], { default: 'auto' }),
  shadowMode: Type.Boolean({ default: false }),
  /** Send IETF RateLimit headers describing the quota on allowed responses too. */
  responseHeaders: Type.Boolean({ default: false }),
});

export type QuotaPolicySpec = Static<typeof QuotaPolicySpec>;

export const quotaPolicyKind: KindDefinition<typeof QuotaPolicySpec> = {
  kind: 'QuotaPolicy',
  spec: QuotaPolicySpec,
  description: 'Long-window (day/month) request budgets per principal or API key.',
  check(doc) {
    const spec = doc.spec as QuotaPolicySpec;
    return spec.subject.from === 'header' && !spec.subject.header
      ? [{ path: ['spec', 'subject', 'header'], message: 'subject.header is required when subject.from is header' }]
      : [];
  },
};
