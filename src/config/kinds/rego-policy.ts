/** `RegoPolicy`: Rego modules (or an OPA wasm bundle) and the entrypoint ext_authz evaluates. */
import { Type, type Static } from '@sinclair/typebox';
import { Duration, parseDuration } from '../duration.ts';
import { Obj, Opt, WorkloadSelector } from './common.ts';
import type { KindDefinition, KindIssue } from './types.ts';

export const RegoPolicySpec = Obj({
  /** `.rego` files, relative to this document's file. */
  modules: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  /** An `opa build -t wasm` bundle (.tar.gz), relative to this document's file. */
  wasmBundle: Opt(Type.String({ minLength: 1 })),
  /** Decision path, as the OPA-Envoy plugin's `path` (default `envoy/authz/allow`). */
  entrypoint: Type.String({ minLength: 1, default: 'envoy/authz/allow' }),
  selector: Opt(WorkloadSelector),
  contextExtensions: Opt(Type.Record(Type.String({ minLength: 1 }), Type.String())),
  dryRun: Type.Boolean({ default: false }),
  /** When true the policy is only consulted by CUSTOM AuthorizationPolicies naming it as provider. */
  providerOnly: Type.Boolean({ default: false }),
  /** Time one evaluation may take (default: Mesh `extAuthz.policyEvaluationBudget`, 50ms). */
  evaluationBudget: Opt(Duration()),
});

export type RegoPolicySpec = Static<typeof RegoPolicySpec>;

export const regoPolicyKind: KindDefinition<typeof RegoPolicySpec> = {
  kind: 'RegoPolicy',
  spec: RegoPolicySpec,
  description: 'Rego modules or an OPA wasm bundle, the decision entrypoint and the workloads it applies to.',
  check(doc, ctx) {
    const spec = doc.spec as RegoPolicySpec;
    const issues: KindIssue[] = [];
    if ((spec.modules.length > 0) === (spec.wasmBundle !== undefined)) {
      issues.push({ path: ['spec'], message: 'exactly one of modules (non-empty) or wasmBundle is required' });
    }
    spec.modules.forEach((m, i) => {
      if (!ctx.fileExists(doc.source.file, m)) issues.push({ path: ['spec', 'modules', i], message: `module file "${m}" not found` });
    });
    if (spec.evaluationBudget !== undefined) {
      const ms = parseDuration(spec.evaluationBudget);
      if (ms < 1 || ms > 60_000) issues.push({ path: ['spec', 'evaluationBudget'], message: `evaluationBudget must be between 1ms and 60s (got ${spec.evaluationBudget})` });
    }
    if (spec.wasmBundle && !ctx.fileExists(doc.source.file, spec.wasmBundle)) issues.push({ path: ['spec', 'wasmBundle'], message: `bundle file "${spec.wasmBundle}" not found` });
    return issues;
  },
};
