import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli, type CliIo } from '../../src/cli/index.ts';
import { envoyMessageType } from '../../src/lib/protos.ts';
import { DEFAULT_TOKEN_PLACEHOLDER } from '../../src/xds/bootstrap.ts';
import { pgvViolations } from './pgv.ts';

type Json = Record<string, unknown>;

function io(): CliIo & { out: string; err: string } {
  const captured = { out: '', err: '' };
  return Object.assign(captured, { stdout: (t: string) => { captured.out += t; }, stderr: (t: string) => { captured.err += t; }, env: {}, cwd: process.cwd() });
}

/** Envoy reads node.metadata (a Struct) as a plain JSON object; protobufjs wants {fields}. */
function asProtoJson(bootstrap: Json): Json {
  const nodeJson = bootstrap.node as Json;
  const fields = Object.fromEntries(Object.entries(nodeJson.metadata as Record<string, string>).map(([k, v]) => [k, { stringValue: v }]));
  return { ...bootstrap, node: { ...nodeJson, metadata: { fields } } };
}

describe('meshward proxy bootstrap', () => {
  it('prints a bootstrap that encodes as an Envoy Bootstrap and points ADS, SDS and ext_authz at meshward', async () => {
    const out = io();
    const code = await runCli(['proxy', 'bootstrap', '--node', 'orders-7d9f', '--service-account', 'orders', '--namespace', 'shop', '--service', 'orders', '--meshward', 'meshward.meshward-system:15010', '--delta'], out);
    expect(code).toBe(0);
    expect(out.out).toMatch(/^# Envoy bootstrap for orders-7d9f/);
    const doc = parse(out.out) as Json;
    const type = envoyMessageType('envoy.config.bootstrap.v3.Bootstrap');
    const decoded = type.deserialize(Buffer.from(type.serialize(asProtoJson(doc)))) as Json;
    expect(decoded).toMatchObject({
      node: { id: 'orders-7d9f', cluster: 'orders.shop' },
      dynamic_resources: {
        ads_config: { api_type: 'DELTA_GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'meshward' }, initial_metadata: [{ key: 'authorization', value: `Bearer ${DEFAULT_TOKEN_PLACEHOLDER}` }] }] },
        cds_config: { ads: {} },
        lds_config: { ads: {} },
      },
      static_resources: { clusters: [{ name: 'meshward', type: 'STRICT_DNS', load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'meshward.meshward-system', port_value: 15010 } } } }] }] } }] },
    });
    expect(pgvViolations(decoded, 'envoy.config.bootstrap.v3.Bootstrap')).toEqual([]);
    expect(doc.node).toMatchObject({ metadata: { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'orders', SERVICE: 'orders' } });
    expect(JSON.stringify(decoded)).toContain('http2_protocol_options');
  });

  it('uses TLS to meshward when given its CA, accepting only a certificate that names the address dialled', async () => {
    const tlsOf = async (address: string) => {
      const out = io();
      expect(await runCli(['proxy', 'bootstrap', '--node', 'n', '--service-account', 'web', '--meshward', address, '--meshward-ca', '/etc/meshward/ca.pem'], out)).toBe(0);
      const doc = parse(out.out) as Json;
      const type = envoyMessageType('envoy.config.bootstrap.v3.Bootstrap');
      expect(pgvViolations(type.deserialize(Buffer.from(type.serialize(asProtoJson(doc)))) as Json, 'envoy.config.bootstrap.v3.Bootstrap')).toEqual([]);
      const cluster = (doc.static_resources as { clusters: Json[] }).clusters[0]!;
      return { cluster, tls: (cluster.transport_socket as { typed_config: Json }).typed_config };
    };
    const byIp = await tlsOf('10.0.0.5:15010');
    expect(byIp.cluster.type).toBe('STATIC');
    expect(byIp.tls).toEqual({
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      common_tls_context: { validation_context: { trusted_ca: { filename: '/etc/meshward/ca.pem' }, match_typed_subject_alt_names: [{ san_type: 'IP_ADDRESS', matcher: { exact: '10.0.0.5' } }] } },
    });
    const byName = await tlsOf('meshward.meshward-system.svc:15010');
    expect(byName.tls).toMatchObject({
      sni: 'meshward.meshward-system.svc',
      common_tls_context: { validation_context: { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'meshward.meshward-system.svc' } }] } },
    });
  });

  it('adds the meshward-unary cluster, with the same TLS, and says so in the node metadata when given the unary port', async () => {
    const out = io();
    expect(await runCli(['proxy', 'bootstrap', '--node', 'n', '--service-account', 'web', '--meshward', 'meshward.mw.svc:15010', '--unary-meshward', 'meshward.mw.svc:15011', '--meshward-ca', '/etc/meshward/ca.pem'], out)).toBe(0);
    const doc = parse(out.out) as Json;
    const type = envoyMessageType('envoy.config.bootstrap.v3.Bootstrap');
    expect(pgvViolations(type.deserialize(Buffer.from(type.serialize(asProtoJson(doc)))) as Json, 'envoy.config.bootstrap.v3.Bootstrap')).toEqual([]);
    const clusters = (doc.static_resources as { clusters: Json[] }).clusters;
    expect(clusters.map((c) => c.name)).toEqual(['meshward', 'meshward-unary']);
    expect(clusters[1]).toMatchObject({ load_assignment: { cluster_name: 'meshward-unary', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'meshward.mw.svc', port_value: 15011 } } } }] }] } });
    expect(clusters[1]!.transport_socket).toEqual(clusters[0]!.transport_socket);
    expect(doc.node).toMatchObject({ metadata: { MESHWARD_UNARY_AUTHZ: 'true' } });
    const plain = io();
    expect(await runCli(['proxy', 'bootstrap', '--node', 'n', '--service-account', 'web'], plain)).toBe(0);
    expect((parse(plain.out) as { node: { metadata: Json } }).node.metadata.MESHWARD_UNARY_AUTHZ).toBeUndefined();
  });

  it('fails with a usage error when --node or --service-account is missing, or the address is malformed', async () => {
    const a = io();
    expect(await runCli(['proxy', 'bootstrap', '--service-account', 'web'], a)).toBe(2);
    expect(a.err).toContain('--node is required');
    const b = io();
    expect(await runCli(['proxy', 'bootstrap', '--node', 'n', '--service-account', 'web', '--meshward', 'nohostport'], b)).toBe(2);
    expect(b.err).toContain('must be host:port');
    const c = io();
    expect(await runCli(['proxy', 'bootstrap', '--node', 'n', '--service-account', 'web', '--unary-meshward', 'meshward:99999'], c)).toBe(2);
    expect(c.err).toContain('must be host:port');
  });
});
