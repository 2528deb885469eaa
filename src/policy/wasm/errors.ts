/** Errors of the OPA wasm bundle loader. */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../../lib/errors.ts';

registerErrorCodes({
  WASM_BUNDLE_INVALID: {
    grpc: GrpcStatus.INVALID_ARGUMENT,
    http: 400,
    exit: 65,
    description: 'An OPA wasm bundle is not a readable .tar.gz, or one of its files is malformed.',
  },
  WASM_POLICY_MISSING: {
    grpc: GrpcStatus.INVALID_ARGUMENT,
    http: 400,
    exit: 65,
    description: 'An OPA wasm bundle has no policy.wasm.',
  },
  WASM_MODULE_INVALID: {
    grpc: GrpcStatus.INVALID_ARGUMENT,
    http: 400,
    exit: 65,
    description: 'policy.wasm cannot be instantiated with the OPA wasm ABI (version 1).',
  },
  WASM_ENTRYPOINT_UNKNOWN: {
    grpc: GrpcStatus.NOT_FOUND,
    http: 404,
    exit: 1,
    description: 'The entrypoint is not exported by the wasm policy.',
  },
  WASM_EVAL_FAILED: {
    grpc: GrpcStatus.INTERNAL,
    http: 500,
    exit: 70,
    description: 'The wasm policy aborted or returned an unreadable result.',
  },
});

export type WasmErrorCode = 'WASM_BUNDLE_INVALID' | 'WASM_POLICY_MISSING' | 'WASM_MODULE_INVALID' | 'WASM_ENTRYPOINT_UNKNOWN' | 'WASM_EVAL_FAILED';

export class WasmPolicyError extends MeshwardError {
  constructor(code: WasmErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(code, message, options);
  }
}
