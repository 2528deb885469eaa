/** A grpc.health.v1 client built from the proto grpc-health-check ships. */
import { loadPackageDefinition, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';

const pkg = loadPackageDefinition(loadSync(protoPath, { keepCase: true, enums: String })) as unknown as { grpc: { health: { v1: { Health: ServiceClientConstructor } } } };
export const HealthClient = pkg.grpc.health.v1.Health;
