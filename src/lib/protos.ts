/**
 * Loads the official Envoy API protos shipped in `@grpc/grpc-js-xds/deps` (never retyped here).
 * All resource types are loaded in ONE loadSync call so that, with `json: true`, an object with
 * "@type" packs into google.protobuf.Any for any of them (proto-loader only packs types it loaded
 * in the same call).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';

const require = createRequire(import.meta.url);
const xdsRoot = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

/** proto-loader include roots for the Envoy API and its dependencies. */
export const ENVOY_INCLUDE_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(xdsRoot, d));

/** Folder of meshward's own protos (Istio CA API). */
export const MESHWARD_PROTO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  json: true,
  includeDirs: ENVOY_INCLUDE_DIRS,
};

/** Every Envoy proto meshward speaks or generates. */
export const ENVOY_PROTO_FILES = [
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/ratelimit/v3/rls.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/ratelimit/v3/rate_limit.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
];

let cached: { definition: protoLoader.PackageDefinition; grpc: GrpcObject } | undefined;

/** The loaded package definition (cached: loading takes ~1 s). */
export function envoyPackageDefinition(): protoLoader.PackageDefinition {
  return loadEnvoy().definition;
}

function loadEnvoy(): { definition: protoLoader.PackageDefinition; grpc: GrpcObject } {
  if (!cached) {
    const definition = protoLoader.loadSync(ENVOY_PROTO_FILES, PROTO_LOADER_OPTIONS);
    cached = { definition, grpc: loadPackageDefinition(definition) };
  }
  return cached;
}

/** Looks up a service client constructor by its full name, e.g. `envoy.service.auth.v3.Authorization`. */
export function envoyService(fullName: string): ServiceClientConstructor {
  let node: unknown = loadEnvoy().grpc;
  for (const part of fullName.split('.')) node = (node as Record<string, unknown>)[part];
  if (typeof node !== 'function') throw new Error(`no service ${fullName} in the Envoy protos`);
  return node as ServiceClientConstructor;
}

/** The service definition to pass to `server.addService`. */
export function envoyServiceDefinition(fullName: string): ServiceDefinition {
  return envoyService(fullName).service;
}

/** Message type (protobufjs-backed) for encode/decode round-trips, e.g. `envoy.config.listener.v3.Listener`. */
export function envoyMessageType(fullName: string): protoLoader.MessageTypeDefinition<object, object> {
  const def = loadEnvoy().definition[fullName];
  if (!def || !('format' in def) || def.format !== 'Protocol Buffer 3 DescriptorProto') {
    throw new Error(`no message ${fullName} in the Envoy protos`);
  }
  return def as protoLoader.MessageTypeDefinition<object, object>;
}

/** Loads one of meshward's own protos (in `proto/`) with the same options. */
export function loadMeshwardProto(file: string): GrpcObject {
  const definition = protoLoader.loadSync(path.join(MESHWARD_PROTO_DIR, file), {
    ...PROTO_LOADER_OPTIONS,
    includeDirs: [MESHWARD_PROTO_DIR, ...ENVOY_INCLUDE_DIRS],
  });
  return loadPackageDefinition(definition);
}
