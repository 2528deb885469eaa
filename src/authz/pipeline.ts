/**
 * Compiles the stage list for a snapshot and runs it per request (see `stage.ts` for the
 * contract). Stages run synchronously while they return plain values; the first one returning a
 * Promise switches the rest of that request to async, so a YAML-only pipeline never awaits.
 */
import { performance } from 'node:perf_hooks';
import type { ConfigSnapshot } from '../config/index.ts';
import { type HeaderOverflow, headerOverflow, MAX_REQUEST_HEADER_BYTES, MAX_REQUEST_HEADERS } from './codec.ts';
import { type Decision, emptyMutations } from './decision.ts';
import { AuthzStageError } from './errors.ts';
import { buildInput, type CheckRequestJson } from './input.ts';
import type { CheckContext, Stage, StageFactory, StageResult } from './stage.ts';
import { WorkloadResolver } from './workload.ts';

export interface CompiledPipeline {
  readonly snapshot: ConfigSnapshot;
  readonly stages: readonly Stage[];
  readonly workloads: WorkloadResolver;
}

export interface CheckOutcome {
  decision: Decision;
  ctx: CheckContext;
  /** Which stage ended the pipeline (undefined: all ran, or the request was malformed). */
  decidedBy?: string;
}

/** Called after each stage with its duration in seconds (metrics). */
export type StageObserver = (stage: string, seconds: number) => void;

export async function compilePipeline(snapshot: ConfigSnapshot, factories: readonly StageFactory[]): Promise<CompiledPipeline> {
  const stages: Stage[] = [];
  try {
    for (const f of factories) stages.push(await f.compile(snapshot));
  } catch (err) {
    for (const s of stages) s.close?.();
    throw err;
  }
  return { snapshot, stages, workloads: new WorkloadResolver(snapshot) };
}

export function closePipeline(p: CompiledPipeline): void {
  for (const s of p.stages) s.close?.();
}

const ALLOW: Decision = Object.freeze({ outcome: 'allow', reason: 'allowed' }) as Decision;

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}

function finalAllow(ctx: CheckContext): Decision {
  const decided = ctx.matchedPolicies.find((m) => m.effect === 'allow' && !m.dryRun);
  return decided ? { outcome: 'allow', reason: `allowed by ${decided.kind} ${decided.namespace}/${decided.name}` } : ALLOW;
}

/** A request over the decoder's header limits (codec.ts) is denied with 431, and audited as any denial. */
function headersTooLarge(o: HeaderOverflow): Decision {
  return { outcome: 'deny', status: 431, reason: `request headers exceed the limits (${o.count} headers, ${o.bytes} bytes; at most ${MAX_REQUEST_HEADERS} headers and ${MAX_REQUEST_HEADER_BYTES} bytes)` };
}

export function runPipeline(
  pipeline: CompiledPipeline,
  request: CheckRequestJson,
  run: { decisionId: string; now: number; observe?: StageObserver },
): CheckOutcome | Promise<CheckOutcome> {
  const built = buildInput(request, { pathNormalization: pipeline.snapshot.mesh.pathNormalization.normalization });
  const ctx: CheckContext = {
    snapshot: pipeline.snapshot,
    decisionId: run.decisionId,
    now: run.now,
    input: built.input,
    request: built.facts,
    workload: pipeline.workloads.resolve(built.input.attributes),
    matchedPolicies: [],
    mutations: emptyMutations(),
  };
  if (built.badRequest !== undefined) return { decision: { outcome: 'bad_request', reason: built.badRequest }, ctx };
  const overflow = headerOverflow(request);
  if (overflow !== undefined) return { decision: headersTooLarge(overflow), ctx };
  return continueFrom(pipeline.stages, 0, ctx, run.observe);
}

function continueFrom(stages: readonly Stage[], start: number, ctx: CheckContext, observe: StageObserver | undefined): CheckOutcome | Promise<CheckOutcome> {
  for (let i = start; i < stages.length; i++) {
    const stage = stages[i]!;
    const t0 = performance.now();
    let result: StageResult | Promise<StageResult>;
    try {
      result = stage.run(ctx);
    } catch (err) {
      throw new AuthzStageError(stage.name, err);
    }
    if (isPromise(result)) return finishAsync(stages, i, result, t0, ctx, observe);
    observe?.(stage.name, (performance.now() - t0) / 1000);
    if (result) return { decision: result, ctx, decidedBy: stage.name };
  }
  return { decision: finalAllow(ctx), ctx };
}

async function finishAsync(stages: readonly Stage[], i: number, pending: Promise<StageResult>, t0: number, ctx: CheckContext, observe: StageObserver | undefined): Promise<CheckOutcome> {
  const stage = stages[i]!;
  let result: StageResult;
  try {
    result = await pending;
  } catch (err) {
    throw new AuthzStageError(stage.name, err);
  }
  observe?.(stage.name, (performance.now() - t0) / 1000);
  if (result) return { decision: result, ctx, decidedBy: stage.name };
  return continueFrom(stages, i + 1, ctx, observe);
}
