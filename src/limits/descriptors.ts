/**
 * Descriptor trees compiled once per configuration snapshot, and the lookup the reference rate
 * limit service does (`GetLimit`): a request descriptor of N entries walks N levels; at each level
 * `key_value` is tried first, then a `key_prefix*` wildcard, then the bare `key` (any value). The
 * limit applies only when the last entry lands on a node that has one.
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
  readonly children: ReadonlyMap<string, DescriptorNode>;
  /** `key_prefix*` composite keys of this level, with their prefix (without the `*`), in config order. */
  readonly wildcards: readonly { prefix: string; node: DescriptorNode }[];
  readonly limit?: CompiledLimit;
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

/** Compiles one level (and below). The schema check already rejected duplicates and bad wildcards. */
export function compileDescriptors(descriptors: readonly RateLimitDescriptor[], parentPath = ''): DescriptorNode {
  const children = new Map<string, DescriptorNode>();
  const wildcards: { prefix: string; node: DescriptorNode }[] = [];
  for (const d of descriptors) {
    const key = compositeKey(d.key, d.value);
    const path = parentPath ? `${parentPath}.${key}` : key;
    const sub = compileDescriptors(d.descriptors ?? [], path);
    const limit = compileLimit(d, path);
    const node: DescriptorNode = { children: sub.children, wildcards: sub.wildcards, ...(limit ? { limit } : {}) };
    children.set(key, node);
    if (key.endsWith('*')) wildcards.push({ prefix: key.slice(0, -1), node });
  }
  return { children, wildcards };
}

function step(level: DescriptorNode, entry: DescriptorEntry): DescriptorNode | undefined {
  const full = `${entry.key}_${entry.value}`;
  const exact = level.children.get(full);
  if (exact) return exact;
  for (const w of level.wildcards) if (full.startsWith(w.prefix)) return w.node;
  return level.children.get(entry.key);
}

/** The limit for a request descriptor, or undefined (no limit applies: the request is not counted). */
export function findLimit(root: DescriptorNode, entries: readonly DescriptorEntry[]): CompiledLimit | undefined {
  let level = root;
  for (let i = 0; i < entries.length; i++) {
    const node = step(level, entries[i]!);
    if (!node) return undefined;
    if (i === entries.length - 1) return node.limit;
    // The request is deeper than the configuration: no limit (the reference service's behaviour).
    if (node.children.size === 0) return undefined;
    level = node;
  }
  return undefined;
}
