/**
 * The ext_authz service, loaded from the official Envoy protos with camelCase field names
 * (`keepCase: false`): a decoded CheckRequest is then already the protojson shape the OPA-Envoy
 * input uses (`input.attributes.request.http.headers`, `contextExtensions`, ...), so no per-request
 * key conversion is needed. `oneofs: false` keeps protobufjs' virtual oneof fields out of the input.
 * The wire format is unchanged: clients built from `envoyService()` (snake_case) interoperate.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ENVOY_INCLUDE_DIRS } from '../lib/protos.ts';

export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';

let cached: ServiceDefinition | undefined;

export function authorizationServiceDefinition(): ServiceDefinition {
  if (!cached) {
    const definition = protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', {
      keepCase: false, longs: String, enums: String, bytes: String, defaults: false, oneofs: false, json: true, includeDirs: ENVOY_INCLUDE_DIRS,
    });
    cached = definition[AUTHORIZATION_SERVICE] as unknown as ServiceDefinition;
  }
  return cached;
}
