/**
 * The `authorize` stage, compiled once per snapshot:
 *   1. CUSTOM AuthorizationPolicies whose rules match consult their provider (a document policy,
 *      e.g. a RegoPolicy): a denial denies;
 *   2. YAML AuthorizationPolicies (Istio order: DENY, then ALLOW; AUDIT recorded);
 *   3. document policies (RegoPolicy, ...) selecting the workload and route: any denial denies.
 * Dry-run policies at every step are evaluated and recorded with what they would have done,
 * never enforced. A document policy that throws or yields no decision fails the check (gRPC
 * error), so Envoy's failure mode decides — never a silent allow.
 */
import type { MatchedPolicy } from '../audit/record.ts';
import type { ConfigDocument, ConfigSnapshot } from '../config/index.ts';
import { selectorMatches } from '../config/selector.ts';
import type { Logger } from '../lib/logger.ts';
import { WorkloadCache } from '../lib/workload-cache.ts';
import {
  type AuthorizationPolicySet, type CompiledPolicy, compileAuthorizationPoliciesSliced, PolicyBudgetExceededError, PolicyCompileError, PolicyEngineMissingError,
  type PolicyEngines, PolicyEvaluationError, type PolicyMatch, type PolicyResult, toPolicyResult, type YamlVerdict,
} from '../policy/index.ts';
import type { Decision } from './decision.ts';
import { applyPolicyResult, isAllowed } from './policy-result.ts';
import type { CheckContext, Stage, StageFactory, StageResult, Workload } from './stage.ts';

interface DocumentPolicy {
  kind: string;
  namespace: string;
  name: string;
  id: string;
  /** e.g. `envoy.authz.allow` for the audit record. */
  action?: string;
  meshWide: boolean;
  selector?: { matchLabels: Record<string, string> };
  gate?: [string, string][];
  dryRun: boolean;
  /** Only consulted as a CUSTOM provider. */
  providerOnly: boolean;
  compiled: CompiledPolicy;
}

interface DocumentSpecCommon {
  selector?: { matchLabels: Record<string, string> };
  contextExtensions?: Record<string, string>;
  dryRun?: boolean;
  providerOnly?: boolean;
  entrypoint?: string;
}

const missingEngine = (kind: string): CompiledPolicy => ({ evaluate: () => { throw new PolicyEngineMissingError(kind); } });

async function compileDocument(doc: ConfigDocument, snapshot: ConfigSnapshot, engines: PolicyEngines, logger: Logger): Promise<DocumentPolicy> {
  const spec = doc.spec as DocumentSpecCommon;
  let compiled: CompiledPolicy;
  if (engines.has(doc.kind)) {
    try {
      compiled = await engines.get(doc.kind).compile(doc, snapshot);
    } catch (err) {
      throw PolicyCompileError.at(err, { policy: `${doc.metadata.namespace}/${doc.metadata.name}`, file: doc.source.file, line: doc.source.line });
    }
  } else {
    // Fail closed for the workloads this policy selects, without taking every other workload down.
    logger.warn({ kind: doc.kind, policy: `${doc.metadata.namespace}/${doc.metadata.name}` }, 'no policy engine registered for this kind: checks it applies to fail');
    compiled = missingEngine(doc.kind);
  }
  return {
    kind: doc.kind, namespace: doc.metadata.namespace, name: doc.metadata.name, id: `${doc.metadata.namespace}/${doc.metadata.name}`,
    ...(spec.entrypoint ? { action: spec.entrypoint.replaceAll('/', '.') } : {}),
    meshWide: doc.metadata.namespace === snapshot.mesh.rootNamespace,
    ...(spec.selector ? { selector: spec.selector } : {}),
    ...(spec.contextExtensions ? { gate: Object.entries(spec.contextExtensions) } : {}),
    dryRun: spec.dryRun ?? false,
    providerOnly: spec.providerOnly ?? false,
    compiled,
  };
}

function gateOpen(gate: [string, string][] | undefined, ext: Readonly<Record<string, string>>): boolean {
  if (!gate) return true;
  for (const [k, v] of gate) if (ext[k] !== v) return false;
  return true;
}

function yamlRecord(m: PolicyMatch, extra: Partial<MatchedPolicy> = {}): MatchedPolicy {
  return { kind: 'AuthorizationPolicy', namespace: m.policy.namespace, name: m.policy.name, action: m.policy.action, ...(m.rule !== undefined ? { rule: m.rule } : {}), ...extra };
}

function documentRecord(p: DocumentPolicy, result: PolicyResult, extra: Partial<MatchedPolicy> = {}): MatchedPolicy {
  return { kind: p.kind, namespace: p.namespace, name: p.name, ...(p.action ? { action: p.action } : {}), effect: isAllowed(result) ? 'allow' : 'deny', ...(p.compiled.bundle ? { bundle: { name: p.compiled.bundle.name, revision: p.compiled.bundle.revision } } : {}), ...extra };
}

/** Evaluates one document policy; the result is validated once here. */
function evaluateDocument(p: DocumentPolicy, ctx: CheckContext): PolicyResult | Promise<PolicyResult> {
  let raw: unknown;
  try {
    raw = p.compiled.evaluate(ctx.input, ctx);
  } catch (err) {
    throw err instanceof PolicyEngineMissingError || err instanceof PolicyBudgetExceededError ? err : new PolicyEvaluationError(p.id, err);
  }
  if (raw instanceof Promise) return raw.then((r) => toPolicyResult(r, p.id), (err: unknown) => { throw err instanceof PolicyBudgetExceededError || err instanceof PolicyEvaluationError ? err : new PolicyEvaluationError(p.id, err); });
  return toPolicyResult(raw, p.id);
}

export class Authorizer implements Stage {
  readonly name = 'authorize';
  readonly #yaml: AuthorizationPolicySet;
  readonly #documents: DocumentPolicy[];
  readonly #providers: Map<string, DocumentPolicy>;
  readonly #byWorkload = new WorkloadCache<Workload, DocumentPolicy[]>((w) => this.#documents.filter((d) => !d.providerOnly && (d.meshWide || d.namespace === w.namespace) && selectorMatches(d.selector, w.labels)));

  constructor(yaml: AuthorizationPolicySet, documents: DocumentPolicy[]) {
    this.#yaml = yaml;
    this.#documents = documents;
    this.#providers = new Map(documents.map((d) => [d.id, d]));
  }

  #documentsFor(ctx: CheckContext): DocumentPolicy[] {
    const list = this.#byWorkload.get(ctx.workload);
    if (!list.some((d) => d.gate)) return list;
    return list.filter((d) => gateOpen(d.gate, ctx.request.contextExtensions));
  }

  run(ctx: CheckContext): StageResult | Promise<StageResult> {
    const verdict = this.#yaml.evaluate(ctx.workload, ctx.request, ctx.auth);
    const documents = this.#documents.length > 0 ? this.#documentsFor(ctx) : [];
    if (verdict.custom.length === 0 && documents.length === 0) return this.#finishYaml(ctx, verdict);
    return this.#runWithDocuments(ctx, verdict, documents);
  }

  async #runWithDocuments(ctx: CheckContext, verdict: YamlVerdict, documents: DocumentPolicy[]): Promise<StageResult> {
    for (const m of verdict.custom) {
      const provider = this.#providers.get(`${m.policy.namespace}/${m.policy.provider}`);
      if (!provider) throw new PolicyEngineMissingError(`CUSTOM provider ${m.policy.namespace}/${m.policy.provider}`);
      const result = await evaluateDocument(provider, ctx);
      const denial = this.#applyDocument(ctx, result, m.policy.dryRun, `denied by CUSTOM policy ${m.policy.id} (provider ${provider.id})`);
      ctx.matchedPolicies.push(yamlRecord(m, { effect: isAllowed(result) ? 'allow' : 'deny', ...(m.policy.dryRun ? { dryRun: true } : {}) }));
      if (denial) return denial;
    }
    const yamlDecision = this.#finishYaml(ctx, verdict);
    if (yamlDecision) return yamlDecision;
    for (const d of documents) {
      const result = await evaluateDocument(d, ctx);
      const denial = this.#applyDocument(ctx, result, d.dryRun, `denied by ${d.kind} ${d.id}`);
      ctx.matchedPolicies.push(documentRecord(d, result, d.dryRun ? { dryRun: true } : {}));
      if (denial) return denial;
    }
    return undefined;
  }

  /** Applies an enforced result; a dry-run result only has its effect recorded. */
  #applyDocument(ctx: CheckContext, result: PolicyResult, dryRun: boolean, reason: string): Decision | undefined {
    if (dryRun) return undefined;
    return applyPolicyResult(result, ctx.mutations, reason);
  }

  #finishYaml(ctx: CheckContext, verdict: YamlVerdict): StageResult {
    for (const m of verdict.audit) ctx.matchedPolicies.push(yamlRecord(m, { effect: 'audit' }));
    for (const d of verdict.dryRun) ctx.matchedPolicies.push(yamlRecord(d, { dryRun: true, effect: d.effect }));
    if (verdict.decidedBy) ctx.matchedPolicies.push(yamlRecord(verdict.decidedBy, { effect: verdict.allowed ? 'allow' : 'deny' }));
    if (verdict.allowed) return undefined;
    return { outcome: 'deny', reason: verdict.reason };
  }
}

export function authorizeStage(deps: { engines: PolicyEngines; logger: Logger }): StageFactory {
  return {
    name: 'authorize',
    async compile(snapshot) {
      // Sliced: a reload of thousands of policies must not stall the checks being answered.
      const yaml = await compileAuthorizationPoliciesSliced(snapshot.byKind('AuthorizationPolicy'), snapshot.mesh.rootNamespace);
      const kinds = new Set([...deps.engines.kinds(), 'RegoPolicy']);
      const docs = snapshot.documents.filter((d) => kinds.has(d.kind));
      const documents = await Promise.all(docs.map((d) => compileDocument(d, snapshot, deps.engines, deps.logger)));
      return new Authorizer(yaml, documents);
    },
  };
}
