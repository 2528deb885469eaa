/**
 * All AuthorizationPolicies of a snapshot, compiled once (`compileAuthorizationPolicies`), with a
 * per-workload view (policies in scope, filed in rule indexes) built on first use and cached.
 *
 * Evaluation order (Istio): CUSTOM first (the caller consults their providers), then any matching
 * DENY denies; no ALLOW policy in scope ⇒ allow; a matching ALLOW ⇒ allow; otherwise deny. AUDIT
 * policies never change the outcome. Dry-run policies are evaluated into a shadow decision and
 * reported, never enforced.
 */
import type { AuthorizationPolicySpec } from '../../config/kinds/authorization-policy.ts';
import type { ConfigDocument } from '../../config/index.ts';
import { selectorMatches } from '../../config/selector.ts';
import { PolicyCompileError } from '../errors.ts';
import type { MatchAuth, MatchFacts } from './request.ts';
import { type CompiledRule, compileRule } from './rule.ts';
import { type IndexedRule, RuleIndex } from './rule-index.ts';
import { WorkloadCache } from '../../lib/workload-cache.ts';

export type PolicyAction = AuthorizationPolicySpec['action'];

export interface YamlPolicy {
  /** `namespace/name`. */
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly action: PolicyAction;
  readonly dryRun: boolean;
  /** CUSTOM: the RegoPolicy (same namespace) that decides. */
  readonly provider?: string;
  /** In the root namespace: applies mesh-wide. */
  readonly meshWide: boolean;
  readonly selector?: { matchLabels: Record<string, string> };
  /** Per-route selection: every pair must be in the request's context_extensions. */
  readonly gate?: readonly (readonly [string, string])[];
  readonly rules: readonly CompiledRule[];
  readonly ordinal: number;
}

export interface WorkloadRef {
  namespace?: string;
  labels: Readonly<Record<string, string>>;
}

export interface PolicyMatch {
  policy: YamlPolicy;
  /** Index of the matching rule; absent when a policy is reported for not matching (dry-run ALLOW). */
  rule?: number;
}

export interface DryRunReport extends PolicyMatch {
  effect: 'allow' | 'deny';
}

export interface YamlVerdict {
  allowed: boolean;
  reason: string;
  /** The enforced DENY or ALLOW policy that decided; undefined when a default decided. */
  decidedBy?: PolicyMatch;
  /** CUSTOM policies whose rules matched, in order (dry-run ones included: check `policy.dryRun`). */
  custom: PolicyMatch[];
  /** AUDIT policies whose rules matched. */
  audit: PolicyMatch[];
  /** Dry-run DENY/ALLOW policies and what each would have done. */
  dryRun: DryRunReport[];
  /** The decision had dry-run policies been enforced (only when some apply). */
  shadowAllowed?: boolean;
}

const MAX_CACHED_VIEWS = 10_000;

function compilePolicy(doc: ConfigDocument<AuthorizationPolicySpec>, rootNamespace: string, ordinal: number): YamlPolicy {
  const id = `${doc.metadata.namespace}/${doc.metadata.name}`;
  const location = { policy: id, file: doc.source.file, line: doc.source.line };
  const spec = doc.spec;
  try {
    const rules = (spec.rules ?? []).map((r, i) => compileRule(r, `rules[${i}]`));
    const gate = spec.contextExtensions ? Object.entries(spec.contextExtensions) : undefined;
    return Object.freeze({
      id, namespace: doc.metadata.namespace, name: doc.metadata.name,
      action: spec.action ?? 'ALLOW', dryRun: spec.dryRun ?? false,
      ...(spec.provider ? { provider: spec.provider.name } : {}),
      meshWide: doc.metadata.namespace === rootNamespace,
      ...(spec.selector ? { selector: spec.selector } : {}),
      ...(gate && gate.length > 0 ? { gate } : {}),
      rules, ordinal,
    });
  } catch (err) {
    throw PolicyCompileError.at(err, location);
  }
}

/** The policies in scope for one workload, filed by action. */
class WorkloadView {
  readonly deny = new RuleIndex<YamlPolicy>();
  readonly allow = new RuleIndex<YamlPolicy>();
  readonly audit = new RuleIndex<YamlPolicy>();
  readonly custom = new RuleIndex<YamlPolicy>();
  readonly allowPolicies: YamlPolicy[] = [];
  readonly policies: YamlPolicy[];
  readonly hasDryRun: boolean;
  readonly hasGates: boolean;

  constructor(policies: YamlPolicy[]) {
    this.policies = policies;
    this.hasGates = policies.some((p) => p.gate !== undefined);
    this.hasDryRun = policies.some((p) => p.dryRun && (p.action === 'ALLOW' || p.action === 'DENY'));
    for (const p of policies) {
      if (p.action === 'ALLOW') this.allowPolicies.push(p);
      const index = { ALLOW: this.allow, DENY: this.deny, AUDIT: this.audit, CUSTOM: this.custom }[p.action];
      p.rules.forEach((r, i) => index.add({ policy: p, rule: i, match: r.match, ordinal: p.ordinal * 65_536 + i }, r.keys));
    }
  }
}

/**
 * The first rule matching the path or, failing that, one of its other readings (`alternatePaths`):
 * a DENY that any reading of the path matches applies, whatever the backend makes of the path.
 */
function firstUnderAnyReading(index: RuleIndex<YamlPolicy>, facts: MatchFacts, auth: MatchAuth | undefined, accept: (p: YamlPolicy) => boolean): IndexedRule<YamlPolicy> | undefined {
  const found = index.first(facts, auth, accept);
  if (found || facts.alternatePaths === undefined) return found;
  for (const path of facts.alternatePaths) {
    const alt = index.first({ ...facts, path }, auth, accept);
    if (alt) return alt;
  }
  return undefined;
}

/** Every matching rule under any reading of the path, at most one per policy, in ordinal order. */
function allUnderAnyReading(index: RuleIndex<YamlPolicy>, facts: MatchFacts, auth: MatchAuth | undefined, accept: (p: YamlPolicy) => boolean): IndexedRule<YamlPolicy>[] {
  const found = index.all(facts, auth, accept);
  if (facts.alternatePaths === undefined) return found;
  const byPolicy = new Map(found.map((e) => [e.policy, e]));
  for (const path of facts.alternatePaths) {
    for (const e of index.all({ ...facts, path }, auth, accept)) {
      const prev = byPolicy.get(e.policy);
      if (!prev || e.ordinal < prev.ordinal) byPolicy.set(e.policy, e);
    }
  }
  return [...byPolicy.values()].sort((a, b) => a.ordinal - b.ordinal);
}

/** The reading a rule matched under, when it did not match the path itself (for the reason). */
function readingMatched(rule: IndexedRule<YamlPolicy>, facts: MatchFacts, auth: MatchAuth | undefined): string | undefined {
  if (facts.alternatePaths === undefined || rule.match(facts, auth)) return undefined;
  return facts.alternatePaths.find((path) => rule.match({ ...facts, path }, auth));
}

const notDryRun = (p: YamlPolicy) => !p.dryRun;
const always = () => true;

function gateOpen(p: YamlPolicy, facts: MatchFacts): boolean {
  if (!p.gate) return true;
  for (const [k, v] of p.gate) if (facts.contextExtensions[k] !== v) return false;
  return true;
}

export class AuthorizationPolicySet {
  readonly policies: readonly YamlPolicy[];
  readonly #rootNamespace: string;
  readonly #views = new WorkloadCache<WorkloadRef, WorkloadView>((workload) => new WorkloadView(this.inScope(workload)), MAX_CACHED_VIEWS);

  constructor(policies: readonly YamlPolicy[], rootNamespace: string) {
    this.policies = policies;
    this.#rootNamespace = rootNamespace;
  }

  get rootNamespace(): string {
    return this.#rootNamespace;
  }

  /** Policies in scope for a workload: mesh-wide ones plus its namespace's, narrowed by selector. */
  inScope(workload: WorkloadRef): YamlPolicy[] {
    return this.policies.filter((p) => (p.meshWide || p.namespace === workload.namespace) && selectorMatches(p.selector, workload.labels));
  }

  #view(workload: WorkloadRef): WorkloadView {
    return this.#views.get(workload);
  }

  /**
   * Decides one request. The per-workload view is cached by the `workload` object's identity (then
   * by its content): pass frozen or never-mutated workload objects.
   */
  evaluate(workload: WorkloadRef, facts: MatchFacts, auth: MatchAuth | undefined): YamlVerdict {
    const view = this.#view(workload);
    // Without gated policies the predicates do not depend on the request: no per-call closures.
    const enforced = view.hasGates ? (p: YamlPolicy) => !p.dryRun && gateOpen(p, facts) : notDryRun;
    const inGate = view.hasGates ? (p: YamlPolicy) => gateOpen(p, facts) : always;
    const verdict: YamlVerdict = { allowed: true, reason: '', custom: [], audit: [], dryRun: [] };
    if (view.policies.length === 0) {
      verdict.reason = 'no authorization policy applies';
      return verdict;
    }
    if (view.custom.size > 0) verdict.custom = allUnderAnyReading(view.custom, facts, auth, inGate).map((e) => ({ policy: e.policy, rule: e.rule }));
    if (view.audit.size > 0) verdict.audit = allUnderAnyReading(view.audit, facts, auth, inGate).map((e) => ({ policy: e.policy, rule: e.rule }));
    const deny = view.deny.size > 0 ? firstUnderAnyReading(view.deny, facts, auth, enforced) : undefined;
    const hasAllow = view.allowPolicies.some(enforced);
    const allow = deny || !hasAllow ? undefined : view.allow.first(facts, auth, enforced);
    if (deny) {
      verdict.allowed = false;
      verdict.decidedBy = { policy: deny.policy, rule: deny.rule };
      const reading = readingMatched(deny, facts, auth);
      verdict.reason = `denied by DENY policy ${deny.policy.id} (rule ${deny.rule})${reading === undefined ? '' : ` on the path read as ${reading}`}`;
    } else if (!hasAllow) {
      verdict.reason = 'no ALLOW policy applies to the workload';
    } else if (allow) {
      verdict.decidedBy = { policy: allow.policy, rule: allow.rule };
      verdict.reason = `allowed by ${allow.policy.id} (rule ${allow.rule})`;
    } else {
      verdict.allowed = false;
      verdict.reason = 'no ALLOW policy matched';
    }
    if (view.hasDryRun) this.#shadow(view, facts, auth, verdict, allow !== undefined);
    return verdict;
  }

  /** Evaluates the dry-run policies as if enforced and reports what each would have done. */
  #shadow(view: WorkloadView, facts: MatchFacts, auth: MatchAuth | undefined, verdict: YamlVerdict, enforcedAllowMatched: boolean): void {
    const dry = (p: YamlPolicy) => p.dryRun && gateOpen(p, facts);
    const dryDenies = allUnderAnyReading(view.deny, facts, auth, dry);
    const dryAllows = view.allow.all(facts, auth, dry);
    for (const e of dryDenies) verdict.dryRun.push({ policy: e.policy, rule: e.rule, effect: 'deny' });
    for (const e of dryAllows) verdict.dryRun.push({ policy: e.policy, rule: e.rule, effect: 'allow' });
    const dryAllowPolicies = view.allowPolicies.filter(dry);
    const anyAllowPolicy = dryAllowPolicies.length > 0 || view.allowPolicies.some((p) => !p.dryRun && gateOpen(p, facts));
    const enforcedDenied = verdict.decidedBy?.policy.action === 'DENY';
    let allowedIfAllowPolicies = enforcedAllowMatched || dryAllows.length > 0;
    if (!anyAllowPolicy) allowedIfAllowPolicies = true;
    verdict.shadowAllowed = !enforcedDenied && dryDenies.length === 0 && allowedIfAllowPolicies;
    if (!verdict.shadowAllowed && !enforcedDenied && dryDenies.length === 0) {
      // Denied in the shadow only because dry-run ALLOW policies exist and none matched.
      for (const p of dryAllowPolicies) verdict.dryRun.push({ policy: p, effect: 'deny' });
    }
  }
}

/**
 * Compiles every AuthorizationPolicy document of a snapshot (once per snapshot).
 * @example
 * const set = compileAuthorizationPolicies(snapshot.byKind('AuthorizationPolicy'), snapshot.mesh.rootNamespace);
 * const verdict = set.evaluate({ namespace: 'shop', labels: { app: 'orders' } }, facts, auth);
 */
export function compileAuthorizationPolicies(docs: readonly ConfigDocument[], rootNamespace: string): AuthorizationPolicySet {
  const policies = docs.map((d, i) => compilePolicy(d as ConfigDocument<AuthorizationPolicySpec>, rootNamespace, i));
  return new AuthorizationPolicySet(policies, rootNamespace);
}

/**
 * The same, yielding to the event loop after every `sliceMs` of compiling: a config reload of
 * thousands of policies then delays checks in flight by a slice, not by the whole compile.
 */
export async function compileAuthorizationPoliciesSliced(docs: readonly ConfigDocument[], rootNamespace: string, sliceMs = 10): Promise<AuthorizationPolicySet> {
  const policies: YamlPolicy[] = [];
  let sliceStart = performance.now();
  for (let i = 0; i < docs.length; i++) {
    policies.push(compilePolicy(docs[i] as ConfigDocument<AuthorizationPolicySpec>, rootNamespace, i));
    if (performance.now() - sliceStart > sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
  return new AuthorizationPolicySet(policies, rootNamespace);
}
