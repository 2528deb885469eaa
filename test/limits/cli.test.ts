import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { commands, parseDescriptorArg } from '../../src/limits/cli.ts';
import { configDir, rateLimitPolicy } from './helpers.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const match = commands.find((c) => c.name === 'limits match')!;

async function run(args: { values: Record<string, string | boolean>; positionals: string[] }): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await match.run(args, { stdout: (t) => { out += t; }, stderr: () => {}, env: {}, cwd: process.cwd() });
  return { code, out };
}

describe('meshward limits match', () => {
  it('shows the limit each descriptor resolves to, like ShouldRateLimit', async () => {
    const dir = configDir(rateLimitPolicy('edge', `  domain: edge
  descriptors:
    - key: remote_address
      rate_limit: { unit: second, requests_per_unit: 10 }
      descriptors:
        - { key: path, value: /login, rate_limit: { unit: minute, requests_per_unit: 5, name: login } }
    - { key: remote_address, value: 10.0.0.1, rate_limit: { unlimited: true } }
    - { key: canary, shadow_mode: true, rate_limit: { unit: hour, requests_per_unit: 1 } }`));
    dirs.push(dir);
    const { code, out } = await run({ values: { config: dir, domain: 'edge', json: true }, positionals: ['remote_address=10.0.0.2', 'remote_address=10.0.0.2,path=/login', 'remote_address=10.0.0.1', 'canary=x', 'other=y'] });
    expect(code).toBe(0);
    expect(JSON.parse(out).descriptors).toEqual([
      { descriptor: 'remote_address=10.0.0.2', limit: '10/second', path: 'remote_address' },
      { descriptor: 'remote_address=10.0.0.2,path=/login', limit: '5/minute', path: 'remote_address.path_/login', name: 'login' },
      { descriptor: 'remote_address=10.0.0.1', limit: 'unlimited', path: 'remote_address_10.0.0.1' },
      { descriptor: 'canary=x', limit: '1/hour', path: 'canary', shadowMode: true },
      { descriptor: 'other=y', limit: null },
    ]);
  });

  it('rejects an unknown domain and a malformed descriptor', async () => {
    const dir = configDir(rateLimitPolicy('d', '  domain: d\n  descriptors: [{ key: a, rate_limit: { unit: second, requests_per_unit: 1 } }]'));
    dirs.push(dir);
    await expect(run({ values: { config: dir, domain: 'nope' }, positionals: ['a=b'] })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(() => parseDescriptorArg('novalue')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(parseDescriptorArg('k=a=b,x=')).toEqual([{ key: 'k', value: 'a=b' }, { key: 'x', value: '' }]);
  });
});
