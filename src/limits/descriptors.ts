/**
 * Descriptor trees compiled once per configuration snapshot, and the lookup the reference rate
 * limit service does (`GetLimit`): a request descriptor of N entries walks N levels; at each level
 * `key_value` is tried first, then a `key_prefix*` wildcard, then the bare `key` (any value). The
 * limit applies only when the last entry lands on a node that has one. Levels are indexed by key
 * then value, so a lookup never builds a `key_value` string (the reference's composite map keys).
 */
import type { RateLimitDescriptor } from '../config/kinds/rate-limit-policy.ts';
import { type LimitUnit, UNIT_MS, parseUnit } from './units.ts';

/** One `rate_limit` of the configuration, ready to apply. */
export interface CompiledLimit {
  /** Dotted composite key path in the tree, e.g. `source_principal` or `remote_address.path_/api`. */
  readonly path: string;
  readonly unit: LimitUnit;
  readonly requestsPerUnit: number;
  readonly windowMs: number;
  readonly unlimited: boolean;
  readonly shadowMode: boolean;
  /** `rate_limit.name` (the target of another limit's `replaces`). */
  readonly name?: string;
  readonly replaces: readonly string[];
}

export interface DescriptorNode {
  /** Configured entries of this level by key: exact values, `value*` prefixes, and the bare key. */
  readonly children: ReadonlyMap<string, KeyLevel>;
  readonly limit?: CompiledLimit;
}

/** Everything configured under one key at one level (lookup without building `key_value` strings). */
export interface KeyLevel {
  readonly byValue: ReadonlyMap<string, DescriptorNode>;
  /** `value*` entries with their prefix, in configuration order. */
  readonly wildcards: readonly { prefix: string; node: DescriptorNode }[];
  /** The entry without a value (any value, each counted separately). */
  readonly any?: DescriptorNode;
}

export interface DescriptorEntry {
  key: string;
  value: string;
}

function compositeKey(key: string, value: string | undefined): string {
  return value === undefined ? key : `${key}_${value}`;
}

function compileLimit(d: RateLimitDescriptor, path: string): CompiledLimit | undefined {
  const rl = d.rate_limit;
  if (!rl) return undefined;
  const unit = parseUnit(rl.unit ?? 'second');
  return {
    path,
    unit,
    requestsPerUnit: rl.requests_per_unit ?? 0,
    windowMs: UNIT_MS[unit],
    unlimited: rl.unlimited === true,
    shadowMode: d.shadow_mode === true,
    ...(rl.name === undefined ? {} : { name: rl.name }),
    replaces: (rl.replaces ?? []).map((r) => r.name),
  };
}

interface MutableKeyLevel {
  byValue: Map<string, DescriptorNode>;
  wildcards: { prefix: string; node: DescriptorNode }[];
  any?: DescriptorNode;
}

function hasChildren(node: DescriptorNode): boolean {
  return node.children.size > 0;
}

/** Compiles one level (and below). The schema check already rejected duplicates and bad wildcards. */
export function compileDescriptors(descriptors: readonly RateLimitDescriptor[], parentPath = ''): DescriptorNode {
  const children = new Map<string, MutableKeyLevel>();
  for (const d of descriptors) {
    const composite = compositeKey(d.key, d.value);
    const path = parentPath ? `${parentPath}.${composite}` : composite;
    const limit = compileLimit(d, path);
    const node: DescriptorNode = { children: compileDescriptors(d.descriptors ?? [], path).children, ...(limit ? { limit } : {}) };
    let level = children.get(d.key);
    if (!level) children.set(d.key, (level = { byValue: new Map(), wildcards: [] }));
    if (d.value === undefined) level.any = node;
    else if (d.value.endsWith('*')) level.wildcards.push({ prefix: d.value.slice(0, -1), node });
    else level.byValue.set(d.value, node);
  }
  return { children };
}

/** One level down: `key_value` first, then a `key_prefix*` wildcard, then the bare `key`. */
function step(level: DescriptorNode, entry: DescriptorEntry): DescriptorNode | undefined {
  const k = level.children.get(entry.key);
  if (!k) return undefined;
  const exact = k.byValue.get(entry.value);
  if (exact) return exact;
  for (const w of k.wildcards) if (entry.value.startsWith(w.prefix)) return w.node;
  return k.any;
}

/** The limit for a request descriptor, or undefined (no limit applies: the request is not counted). */
export function findLimit(root: DescriptorNode, entries: readonly DescriptorEntry[]): CompiledLimit | undefined {
  let level = root;
  for (let i = 0; i < entries.length; i++) {
    const node = step(level, entries[i]!);
    if (!node) return undefined;
    if (i === entries.length - 1) return node.limit;
    // The request is deeper than the configuration: no limit (the reference service's behaviour).
    if (!hasChildren(node)) return undefined;
    level = node;
  }
  return undefined;
}
