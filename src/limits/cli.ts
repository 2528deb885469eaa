/**
 * `meshward limits match`: which limit a descriptor gets, offline, exactly as ShouldRateLimit
 * resolves it (key+value before wildcard before key, depth, unlimited, replaces, shadow mode).
 * Wired by a one-line file in `src/cli/commands/` re-exporting `commands`.
 *
 * @example
 *   meshward limits match -c policies --domain shop source_principal=cluster.local/ns/shop/sa/web
 *   meshward limits match -c policies --domain edge remote_address=10.0.0.1,path=/login api_key=k1
 */
import type { CliCommand } from '../cli/command.ts';
import { optionValue, pickOptions } from '../cli/options.ts';
import { createSnapshot, loadConfigDir } from '../config/index.ts';
import { MeshwardError } from '../lib/errors.ts';
import type { DescriptorEntry } from './descriptors.ts';
import { resolveLimits } from './engine.ts';
import { compileRateLimits } from './policies.ts';

/** `k=v,k2=v2` → entries (a value may contain `=`; `,` separates entries). */
export function parseDescriptorArg(text: string): DescriptorEntry[] {
  return text.split(',').map((pair) => {
    const i = pair.indexOf('=');
    if (i <= 0) throw new MeshwardError('INVALID_ARGUMENT', `descriptor entry "${pair}" must be key=value`);
    return { key: pair.slice(0, i), value: pair.slice(i + 1) };
  });
}

export interface MatchRow {
  descriptor: string;
  limit: string | null;
  path?: string;
  name?: string;
  shadowMode?: boolean;
}

const matchCommand: CliCommand = {
  name: 'limits match',
  summary: 'Show which rate limit each descriptor gets (offline ShouldRateLimit: key+value, wildcard, key, depth, unlimited, replaces).',
  usage: 'KEY=VALUE[,KEY=VALUE...]...',
  options: {
    ...pickOptions(['config']),
    domain: { type: 'string', value: 'DOMAIN', description: 'RateLimitPolicy domain, as Envoy sends it (required)' },
    json: { type: 'boolean', description: 'Print JSON instead of text' },
  },
  async run({ values, positionals }, io) {
    const domain = typeof values.domain === 'string' ? values.domain : '';
    if (!domain) throw new MeshwardError('INVALID_ARGUMENT', '--domain is required');
    if (positionals.length === 0) throw new MeshwardError('INVALID_ARGUMENT', 'at least one descriptor (key=value[,key=value...]) is required');
    const snapshot = createSnapshot(loadConfigDir(optionValue('config', values, io.env)!));
    const policy = compileRateLimits(snapshot).byDomain.get(domain);
    if (!policy) throw new MeshwardError('NOT_FOUND', `no RateLimitPolicy has domain "${domain}"`);
    const descriptors = positionals.map((p) => ({ entries: parseDescriptorArg(p) }));
    const limits = resolveLimits(policy, descriptors);
    const rows: MatchRow[] = descriptors.map((d, i) => {
      const l = limits[i];
      const descriptor = d.entries.map((e) => `${e.key}=${e.value}`).join(',');
      if (!l) return { descriptor, limit: null };
      return {
        descriptor,
        limit: l.unlimited ? 'unlimited' : `${l.requestsPerUnit}/${l.unit}`,
        path: l.path,
        ...(l.name ? { name: l.name } : {}),
        ...(l.shadowMode ? { shadowMode: true } : {}),
      };
    });
    if (values.json) io.stdout(`${JSON.stringify({ domain, policy: `${policy.namespace}/${policy.name}`, algorithm: policy.algorithm, descriptors: rows }, null, 2)}\n`);
    else {
      io.stdout(`${policy.namespace}/${policy.name} (domain ${domain}, ${policy.algorithm})\n`);
      for (const r of rows) io.stdout(`  ${r.descriptor}: ${r.limit === null ? 'no limit' : `${r.limit} via ${r.path}${r.name ? ` (${r.name})` : ''}${r.shadowMode ? ' [shadow mode]' : ''}`}\n`);
    }
    return 0;
  },
};

export const commands: CliCommand[] = [matchCommand];
