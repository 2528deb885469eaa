/**
 * The SPIFFE Workload API of `meshward agent` (FetchX509SVID, FetchX509Bundles, FetchJWTSVID,
 * FetchJWTBundles, ValidateJWTSVID) on a Unix socket, served from an AgentIdentitySource.
 */
export { startWorkloadApi, workloadApiServiceDefinition, type WorkloadApiOptions, type WorkloadApiServer } from './server.ts';
export { SECURITY_HEADER } from './handlers.ts';
export { socketPathOf } from '../socket.ts';
export { WorkloadApiPermissionError, WorkloadApiRequestError, WorkloadSocketError } from './errors.ts';
