/** Error codes of the agent. */
import { status } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  AGENT_NO_SVID: { grpc: status.UNAVAILABLE, http: 503, exit: 69, description: 'The agent holds no valid X509-SVID yet (meshward not reached) or its SVID expired.' },
  AGENT_TOKEN_UNREADABLE: { grpc: status.UNAUTHENTICATED, http: 401, exit: 77, description: 'The agent cannot read its token file (--token-file), or it is empty.' },
  AGENT_UPSTREAM: { grpc: status.UNAVAILABLE, http: 502, exit: 69, description: 'meshward refused or failed an agent request (CSR, bundle or JWT-SVID).' },
});

export class AgentError extends MeshwardError {}
