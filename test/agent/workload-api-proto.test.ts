/**
 * The project's proto/spiffe/workload/workload.proto is the upstream wire contract: same (empty)
 * package, service, methods, messages, field numbers and types as ../shared's copy of go-spiffe's.
 */
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { MESHWARD_PROTO_DIR } from '../../src/lib/protos.ts';
import { workloadApiServiceDefinition } from '../../src/agent/workload-api/index.ts';
import { upstreamProtoFile } from './workload-api-fixtures.ts';

const options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/** Each message of the file as name → fields (number, type, label, type name), comments dropped. */
function shape(file: string) {
  const definition = protoLoader.loadSync(file, options);
  const messages: Record<string, unknown> = {};
  const methods: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(definition)) {
    if ('format' in def && def.format === 'Protocol Buffer 3 DescriptorProto') {
      const type = def.type as { field: { name: string; number: number; type: string; label: string; typeName: string }[]; oneofDecl: unknown[] };
      messages[name] = { fields: type.field.map((f) => [f.name, f.number, f.type, f.label, f.typeName]), oneofs: type.oneofDecl };
    } else if (!('format' in def)) {
      for (const [method, m] of Object.entries(def as protoLoader.ServiceDefinition)) {
        methods[`${name}.${method}`] = [m.path, m.requestStream, m.responseStream, (m.requestType.type as { name: string }).name, (m.responseType.type as { name: string }).name];
      }
    }
  }
  return { messages, methods };
}

describe('the Workload API proto', () => {
  it('declares the same service, methods, messages and fields as the upstream file', () => {
    const ours = shape(path.join(MESHWARD_PROTO_DIR, 'spiffe', 'workload', 'workload.proto'));
    const upstream = shape(upstreamProtoFile());
    expect(Object.keys(ours.methods)).toContain('SpiffeWorkloadAPI.ValidateJWTSVID');
    expect(ours).toEqual(upstream);
  });

  it('serves the method paths upstream clients call (/SpiffeWorkloadAPI/<method>, no package)', () => {
    const paths = Object.values(workloadApiServiceDefinition()).map((m) => m.path).sort();
    expect(paths).toEqual([
      '/SpiffeWorkloadAPI/FetchJWTBundles', '/SpiffeWorkloadAPI/FetchJWTSVID', '/SpiffeWorkloadAPI/FetchWITBundles', '/SpiffeWorkloadAPI/FetchWITSVID',
      '/SpiffeWorkloadAPI/FetchX509Bundles', '/SpiffeWorkloadAPI/FetchX509SVID', '/SpiffeWorkloadAPI/ValidateJWTSVID',
    ]);
  });
});
