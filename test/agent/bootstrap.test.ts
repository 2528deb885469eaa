import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli, type CliIo } from '../../src/cli/index.ts';
import { envoyMessageType } from '../../src/lib/protos.ts';
import { pgvViolations } from '../xds/pgv.ts';

type Json = Record<string, unknown>;

function io(): CliIo & { out: string } {
  const captured = { out: '' };
  return Object.assign(captured, { stdout: (t: string) => { captured.out += t; }, stderr: () => {}, env: {}, cwd: process.cwd() });
}

async function bootstrap(extra: string[]): Promise<Json> {
  const out = io();
  expect(await runCli(['proxy', 'bootstrap', '--node', 'orders-1', '--service-account', 'orders', '--namespace', 'shop', '--meshward', '127.0.0.1:15010', ...extra], out)).toBe(0);
  return parse(out.out) as Json;
}

const clustersOf = (doc: Json) => (doc.static_resources as { clusters: Json[] }).clusters;

describe('meshward proxy bootstrap --agent', () => {
  it('adds a meshward-agent cluster on the agent\'s socket (pipe address, no credential) that encodes as an Envoy Bootstrap', async () => {
    const doc = await bootstrap(['--agent', '/run/meshward/sds.sock']);
    const agent = clustersOf(doc).find((c) => c.name === 'meshward-agent')!;
    expect(agent).toMatchObject({ type: 'STATIC', load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: '/run/meshward/sds.sock' } } } }] }] } });
    expect(JSON.stringify(agent)).not.toMatch(/authorization|MESHWARD_TOKEN|initial_metadata/);
    expect(JSON.stringify(agent)).toContain('http2_protocol_options');
    const node = doc.node as Json;
    const fields = Object.fromEntries(Object.entries(node.metadata as Record<string, string>).map(([k, v]) => [k, { stringValue: v }]));
    const type = envoyMessageType('envoy.config.bootstrap.v3.Bootstrap');
    const decoded = type.deserialize(Buffer.from(type.serialize({ ...doc, node: { ...node, metadata: { fields } } }))) as Json;
    expect(pgvViolations(decoded, 'envoy.config.bootstrap.v3.Bootstrap')).toEqual([]);
  });

  it('has no agent cluster without --agent', async () => {
    expect(clustersOf(await bootstrap([])).map((c) => c.name)).toEqual(['meshward']);
  });
});
