/** `meshward proxy bootstrap` (Envoy bootstrap for a sidecar), `proxy grpc-bootstrap` (proxyless gRPC) and `meshward proxy status` (connected proxies). */
import path from 'node:path';
import { MeshwardError } from '../../lib/errors.ts';
import { DEFAULT_ADMIN_PORT, renderBootstrap } from '../../xds/bootstrap.ts';
import { renderGrpcBootstrap } from '../../xds/grpc-bootstrap.ts';
import type { ProxiesResponseV1 } from '../../xds/http.ts';
import type { ProxyStatusV1 } from '../../xds/status.ts';
import type { CliCommand, CliOption, CliValues } from '../command.ts';
import { pickOptions, SERVE_DEFAULTS } from '../options.ts';
import { callServer, SERVER_OPTIONS, serverTarget } from '../server.ts';

const str = (v: CliValues[string]): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function required(values: CliValues, name: string): string {
  const v = str(values[name]);
  if (!v) throw new MeshwardError('INVALID_ARGUMENT', `--${name} is required`);
  return v;
}

/** The workload options both bootstraps take; `runsAs` names what runs as the service account. */
const workloadOptions = (nodeDescription: string, runsAs: string): Record<string, CliOption> => ({
  node: { type: 'string', value: 'ID', description: nodeDescription },
  'service-account': { type: 'string', value: 'NAME', description: `Service account the ${runsAs} runs as (required)` },
  namespace: { type: 'string', value: 'NAME', description: 'Namespace of the workload', default: 'default' },
});

const workloadOf = (values: CliValues) => ({
  nodeId: required(values, 'node'),
  serviceAccount: required(values, 'service-account'),
  namespace: str(values.namespace) ?? 'default',
});

const bootstrap: CliCommand = {
  name: 'proxy bootstrap',
  summary: 'Print an Envoy bootstrap (YAML) pointing a sidecar at meshward for ADS, SDS and ext_authz.',
  options: {
    ...workloadOptions('Envoy node id (required)', 'sidecar'),
    service: { type: 'string', value: 'NAME', description: 'Service the workload belongs to' },
    meshward: { type: 'string', value: 'HOST:PORT', description: "meshward's gRPC address as the sidecar reaches it", default: SERVE_DEFAULTS.grpcAddress, env: 'MESHWARD_GRPC_ADDR' },
    'unary-meshward': { type: 'string', value: 'HOST:PORT', description: "meshward's unary gRPC port (`serve --unary-grpc-addr`) as the sidecar reaches it: ext_authz Check goes there (cluster `meshward-unary`)", env: 'MESHWARD_UNARY_GRPC_ADDR' },
    delta: { type: 'boolean', description: 'Use delta xDS instead of state-of-the-world' },
    'admin-port': { type: 'string', value: 'PORT', description: "Envoy's admin port", default: String(DEFAULT_ADMIN_PORT) },
    'meshward-ca': { type: 'string', value: 'FILE', description: "CA certificate that verifies meshward's gRPC TLS certificate (TLS to meshward)" },
    agent: { type: 'string', value: 'SOCKET', description: 'Unix socket of the `meshward agent` next to Envoy: a `meshward-agent` cluster (pipe address, no token) for SDS from it' },
    'agent-xds': { type: 'string', value: 'SOCKET', description: "Unix socket of the agent's xDS proxy (`meshward agent --xds-socket`): ADS goes there and the bootstrap holds no token" },
  },
  async run({ values }, io) {
    const adminPort = str(values['admin-port']) ? Number(values['admin-port']) : DEFAULT_ADMIN_PORT;
    if (!Number.isInteger(adminPort) || adminPort < 1 || adminPort > 65535) throw new MeshwardError('INVALID_ARGUMENT', `--admin-port must be a port number (got "${String(values['admin-port'])}")`);
    const service = str(values.service);
    const caFile = str(values['meshward-ca']);
    try {
      io.stdout(renderBootstrap({
        ...workloadOf(values),
        ...(service ? { service } : {}),
        meshwardAddress: str(values.meshward) ?? io.env.MESHWARD_GRPC_ADDR ?? SERVE_DEFAULTS.grpcAddress,
        ...unaryAddressOf(values, io.env),
        delta: values.delta === true,
        adminPort,
        ...(caFile ? { meshwardCaFile: caFile } : {}),
        ...(str(values.agent) ? { agentSocket: str(values.agent) } : {}),
        ...(str(values['agent-xds']) ? { agentXdsSocket: str(values['agent-xds']) } : {}),
      }));
    } catch (err) {
      if (err instanceof RangeError) throw new MeshwardError('INVALID_ARGUMENT', err.message);
      throw err;
    }
    return 0;
  },
};

function unaryAddressOf(values: CliValues, env: Readonly<Record<string, string | undefined>>): { meshwardUnaryAddress?: string } {
  const address = str(values['unary-meshward']) ?? env.MESHWARD_UNARY_GRPC_ADDR;
  return address ? { meshwardUnaryAddress: address } : {};
}

/** `--agent-xds /run/meshward/xds.sock` is the gRPC target `unix:///run/meshward/xds.sock`; `--xds-server` is taken as given. */
function xdsServerOf(values: CliValues, cwd: string): string {
  const socket = str(values['agent-xds']);
  const server = str(values['xds-server']);
  if (socket && server) throw new MeshwardError('INVALID_ARGUMENT', '--agent-xds and --xds-server both name the xDS server: give one');
  if (socket) return `unix://${path.resolve(cwd, socket)}`;
  if (server) return server;
  throw new MeshwardError('INVALID_ARGUMENT', '--agent-xds (the agent\'s xDS socket) or --xds-server is required');
}

const grpcBootstrap: CliCommand = {
  name: 'proxy grpc-bootstrap',
  summary: 'Print the xDS bootstrap (JSON, for GRPC_XDS_BOOTSTRAP) of a proxyless gRPC application.',
  options: {
    ...workloadOptions('Node id (required)', 'application'),
    'agent-xds': { type: 'string', value: 'SOCKET', description: "Unix socket of the agent's xDS proxy (`meshward agent --xds-socket`): ADS goes there (unix:// target, insecure channel, no token); the agent authenticates the workload" },
    'xds-server': { type: 'string', value: 'TARGET', description: 'Another gRPC target that adds the workload token and forwards ADS to meshward (one of --agent-xds or --xds-server is required)' },
    'certificate-dir': { type: 'string', value: 'DIR', description: "Directory of the agent's svid.pem, svid_key.pem and bundle.pem: mTLS to mesh services (plain text without it)" },
  },
  async run({ values }, io) {
    const certificateDir = str(values['certificate-dir']);
    const bootstrap = renderGrpcBootstrap({
      ...workloadOf(values),
      xdsServer: xdsServerOf(values, io.cwd),
      ...(certificateDir ? { certificateDir } : {}),
    });
    io.stdout(`${JSON.stringify(bootstrap, null, 2)}\n`);
    return 0;
  },
};

function typeCell(t: ProxyStatusV1['types']['cds']): string {
  return t.state === 'NACKED' ? `NACKED (${t.nacked?.version ?? '?'})` : t.state === 'NOT_SENT' ? 'NOT SENT' : t.state;
}

/** An istioctl proxy-status style table. */
export function formatProxyTable(res: ProxiesResponseV1): string {
  const rows = [['NAME', 'NAMESPACE', 'SERVICE', 'CDS', 'LDS', 'EDS', 'RDS', 'VERSION', 'MODE'], ...res.proxies.map((p) => [
    p.nodeId, p.namespace, p.service ?? '-', typeCell(p.types.cds), typeCell(p.types.lds), typeCell(p.types.eds), typeCell(p.types.rds), p.configVersion, p.mode,
  ])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  const nacks = res.proxies.flatMap((p) => Object.entries(p.types).flatMap(([t, s]) => (s.state === 'NACKED' && s.nacked ? [`${p.nodeId} ${t.toUpperCase()} rejected ${s.nacked.version}: ${s.nacked.error}`] : [])));
  return `${lines.join('\n')}\n${nacks.length ? `\n${nacks.join('\n')}\n` : ''}meshward serving configuration ${res.version}; ${res.proxies.length} proxies connected\n`;
}

const status: CliCommand = {
  name: 'proxy status',
  summary: 'List connected proxies and their sync state per type (CDS/LDS/EDS/RDS), like istioctl proxy-status.',
  options: { ...SERVER_OPTIONS, ...pickOptions(['json']) },
  async run({ values }, io) {
    const out = await callServer<ProxiesResponseV1>(serverTarget(values, io), 'GET', '/v1/proxies');
    io.stdout(values.json ? `${JSON.stringify(out, null, 2)}\n` : formatProxyTable(out));
    return 0;
  },
};

export const commands: CliCommand[] = [bootstrap, grpcBootstrap, status];
