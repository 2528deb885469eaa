/**
 * A stored row as the StoredDecisionV1 every reader answers with, whatever the row holds (pure):
 * bodies written by older versions (inputs 5,000 levels deep), edited or inserted by hand (not
 * JSON, wrong types, `__proto__` keys). Known fields are type-checked and fall back to the row's
 * columns, then to a neutral value; the input and unknown fields are cut at the record depth cap
 * (record-cap.ts); what could not be read is said in `unreadable`. This is a view: the hash chain
 * covers the stored text, and `verify` reports such rows as it always did.
 */
import { DECISION_OUTCOMES } from './query.ts';
import { capDepth } from './record-cap.ts';
import type { DecisionOutcome, MatchedPolicy } from './record.ts';
import type { AuditRow, StoredDecisionV1 } from './row.ts';

type Json = unknown;
type Fields = Record<string, Json>;

const OPTIONAL_TEXT = ['sourcePrincipal', 'destination', 'method', 'host', 'path', 'requestId', 'requestPrincipal', 'limit'] as const;
const KNOWN = new Set<string>([
  'decisionId', 'time', 'decision', 'reason', 'status', 'matchedPolicies', 'configVersion', 'latencyUs', 'input', 'masked',
  'seq', 'hash', 'prevHash', 'unreadable', ...OPTIONAL_TEXT,
]);

const isText = (v: Json): v is string => typeof v === 'string';
const isInteger = (v: Json): v is number => Number.isSafeInteger(v);
const isNumber = (v: Json): v is number => typeof v === 'number' && Number.isFinite(v);
const isOutcome = (v: Json): v is DecisionOutcome => DECISION_OUTCOMES.includes(v as DecisionOutcome);
const isObject = (v: Json): v is Fields => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Own data property even for `__proto__` (plain assignment would set the prototype). */
function define(obj: object, key: string, value: Json): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function parseBody(body: Json): { fields: Fields; problem?: string } {
  if (typeof body !== 'string') return { fields: {}, problem: 'body is not text' };
  let parsed: Json;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    return { fields: {}, problem: `body is not JSON (${(err as Error).message})` };
  }
  return isObject(parsed) ? { fields: parsed } : { fields: {}, problem: 'body is not a JSON object' };
}

function matchedPolicy(v: Json): MatchedPolicy | undefined {
  if (!isObject(v) || !isText(v.kind) || !isText(v.namespace) || !isText(v.name)) return undefined;
  const p: MatchedPolicy = { kind: v.kind, namespace: v.namespace, name: v.name };
  if (isText(v.action)) p.action = v.action;
  if (isInteger(v.rule)) p.rule = v.rule;
  if (typeof v.dryRun === 'boolean') p.dryRun = v.dryRun;
  if (v.effect === 'allow' || v.effect === 'deny' || v.effect === 'audit' || v.effect === 'limited') p.effect = v.effect;
  if (isObject(v.bundle) && isText(v.bundle.name) && isText(v.bundle.revision)) p.bundle = { name: v.bundle.name, revision: v.bundle.revision };
  return p;
}

/**
 * The decision a row holds, readable by every reader (JSON.stringify, the API's schema
 * serializer) whatever was stored.
 */
export function readStoredDecision(row: AuditRow): StoredDecisionV1 {
  const { fields: body, problem } = parseBody(row.body);
  const problems: string[] = problem ? [problem] : [];
  // A body field of the right type, else the column, else `fallback` (noted as unreadable).
  const field = <T>(name: string, ok: (v: Json) => v is T, column: Json, fallback: T): T => {
    const v = body[name];
    if (ok(v)) return v;
    if (!problem) problems.push(`${name}: ${v === undefined ? 'missing' : 'wrong type'}`);
    return ok(column) ? column : fallback;
  };
  const policies = (Array.isArray(body.matchedPolicies) ? body.matchedPolicies : []).map(matchedPolicy);
  if (!problem && (!Array.isArray(body.matchedPolicies) || policies.includes(undefined))) problems.push('matchedPolicies: wrong type');
  const out: StoredDecisionV1 = {
    decisionId: field('decisionId', isText, row.decisionId, ''),
    time: field('time', isInteger, row.time, 0),
    decision: field('decision', isOutcome, row.decision, 'error'),
    reason: field('reason', isText, undefined, ''),
    status: field('status', isInteger, row.status, 0),
    matchedPolicies: policies.filter((p): p is MatchedPolicy => p !== undefined),
    configVersion: field('configVersion', isText, row.configVersion, ''),
    latencyUs: field('latencyUs', isNumber, undefined, 0),
    seq: Number(row.seq),
    hash: String(row.hash),
    prevHash: String(row.prevHash),
  };
  for (const name of OPTIONAL_TEXT) {
    const v = body[name];
    if (isText(v)) out[name] = v;
    else if (v !== undefined && v !== null) problems.push(`${name}: wrong type`);
  }
  if (body.input !== undefined) out.input = capDepth(body.input);
  if (body.masked !== undefined) {
    if (Array.isArray(body.masked) && body.masked.every(isText)) out.masked = body.masked;
    else problems.push('masked: wrong type');
  }
  // Fields this version does not know (e.g. `inputError`) are kept, within the depth cap.
  for (const key of Object.keys(body)) if (!KNOWN.has(key)) define(out, key, capDepth(body[key]));
  if (problems.length > 0) out.unreadable = problems.join('; ');
  return out;
}
