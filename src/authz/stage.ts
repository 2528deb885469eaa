/**
 * The ext_authz pipeline is an ordered list of named, timed stages run on ONE config snapshot:
 *
 *   authenticate → authorize → [limits, added by the limits capability] → respond
 *
 * A stage is compiled once per snapshot (`StageFactory.compile`) and then run per request. A stage
 * either returns `undefined` (continue) or a terminal `Decision` (stop; later stages do not run).
 * Stages add to `ctx.mutations` and `ctx.matchedPolicies`; the respond step (not a stage: always
 * last) turns the final decision and mutations into the CheckResponse and the audit record.
 *
 * Ordering constraints: authenticate must precede authorize (policies read `ctx.auth`); limits
 * run after authorize so denied requests never consume quota, and read `ctx.auth` for per-user
 * limits. A stage must not keep per-request state outside `ctx`.
 *
 * @example Another capability plugs a stage in (the limits capability):
 * ```ts
 * const authz = ctx.get<AuthzCapability>('authz');
 * authz.addStage({ name: 'limits', compile: (snapshot) => compileLimits(snapshot) }, { after: 'authorize' });
 * ```
 */
import type { MatchedPolicy } from '../audit/record.ts';
import type { ConfigSnapshot } from '../config/index.ts';
import type { Decision, Mutations } from './decision.ts';
import type { AuthzInput, RequestFacts } from './input.ts';

/** The destination workload the request is for (policy `selector`s match its labels). */
export interface Workload {
  /** Namespace from the destination SPIFFE ID (or the matching Service). */
  namespace?: string;
  /** Service account from the destination SPIFFE ID. */
  serviceAccount?: string;
  /** Name of the matching `Service` document, when one matches. */
  service?: string;
  /** Labels: `destination.labels` sent by Envoy, else the matching Service's labels. */
  labels: Readonly<Record<string, string>>;
  /** e.g. `shop/orders` (audit `destination`). */
  display: string;
}

/** The validated JWT of the request (set by the authenticate stage). */
export interface RequestAuth {
  /** `iss/sub`, Istio's request principal. */
  principal: string;
  issuer: string;
  subject: string;
  audiences: string[];
  /** `azp` claim. */
  presenter?: string;
  claims: Readonly<Record<string, unknown>>;
  /** `namespace/name` of the RequestAuthentication that validated it. */
  policy: string;
}

/** Everything a stage may read and add to for one request. Owned by the pipeline run. */
export interface CheckContext {
  readonly snapshot: ConfigSnapshot;
  readonly decisionId: string;
  /** Clock time at the start of the check (ms since the epoch). */
  readonly now: number;
  /** The policy input exactly as the OPA-Envoy plugin builds it (Rego engines evaluate this). */
  readonly input: AuthzInput;
  /** Normalised request facts for native matchers (YAML policies, limit descriptors). */
  readonly request: RequestFacts;
  readonly workload: Workload;
  /** The validated JWT, when the request carried one. */
  auth?: RequestAuth;
  readonly matchedPolicies: MatchedPolicy[];
  readonly mutations: Mutations;
}

/** `undefined` continues to the next stage; a Decision ends the pipeline. */
export type StageResult = Decision | undefined;

/** A stage compiled for one snapshot. `run` may be sync (preferred: no await on the hot path) or async. */
export interface Stage {
  readonly name: string;
  run(ctx: CheckContext): StageResult | Promise<StageResult>;
  /** Releases what `compile` acquired (timers, caches) when the snapshot is replaced. */
  close?(): void;
}

/** Builds a stage for each new snapshot. A compile failure keeps the previous snapshot's pipeline serving. */
export interface StageFactory {
  readonly name: string;
  compile(snapshot: ConfigSnapshot): Stage | Promise<Stage>;
}

/** Where an added stage goes; default: after the last stage. */
export interface StagePlacement {
  after?: string;
  before?: string;
}

/** Built-in stage names, in order. */
export const BUILTIN_STAGES = ['authenticate', 'authorize'] as const;

/** Inserts `factory` into `list` at `placement` (pure); throws on an unknown anchor or duplicate name. */
export function placeStage(list: readonly StageFactory[], factory: StageFactory, placement: StagePlacement = {}): StageFactory[] {
  if (list.some((s) => s.name === factory.name)) throw new Error(`stage "${factory.name}" is already in the pipeline`);
  const anchor = placement.after ?? placement.before;
  if (anchor === undefined) return [...list, factory];
  const i = list.findIndex((s) => s.name === anchor);
  if (i < 0) throw new Error(`cannot place stage "${factory.name}": no stage "${anchor}" (have ${list.map((s) => s.name).join(', ')})`);
  const at = placement.after !== undefined ? i + 1 : i;
  return [...list.slice(0, at), factory, ...list.slice(at)];
}

/** What the `authz` capability offers other capabilities: call `addStage` before `start()`. */
export interface StageRegistry {
  addStage(factory: StageFactory, placement?: StagePlacement): void;
}
