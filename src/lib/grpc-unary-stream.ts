/**
 * One unary gRPC call served directly on a node:http2 stream: the gRPC-over-HTTP/2 protocol
 * (length-prefixed message, identity/gzip/deflate message encoding, `grpc-timeout`, status in
 * trailers, trailers-only errors) without grpc-js's per-call machinery.
 *
 * Why not grpc-js: ext_authz Check is called on every request of the mesh. Under paced load
 * grpc-js's server call path (interceptor chain, metadata conversion, stream decoder, events) was
 * about a third of the main thread per Check, more than the whole policy pipeline; this file
 * does the same protocol work for the one method that needs it (see docs/authz.md, Performance).
 * Everything else on the gRPC port (SDS, ADS, the CA, health) stays on grpc-js: see
 * grpc-stream-router.ts.
 *
 * The call itself (`UnaryCall`) does not know its transport: `serveUnary` binds it to a
 * node:http2 stream, and the dedicated unary port (src/lib/h2/) binds it to its own streams.
 */
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { gunzip, inflate } from 'node:zlib';
import { type BudgetedCall, DEFAULT_SESSION_REQUEST_BYTES, type SessionRequestBudget, sessionBudgetOf } from './session-request-budget.ts';

/** gRPC status codes used here (google.rpc.Code). */
export const GrpcCode = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13,
} as const;

export interface GrpcFailure {
  code: number;
  message: string;
  /** Extra trailers (lowercase ASCII names, ASCII values), e.g. `meshward-error-code`. */
  trailers?: Record<string, string>;
}

export interface UnaryMethod<Req, Res> {
  deserialize(message: Buffer): Req;
  serialize(response: Res): Buffer;
  /**
   * Optional: the whole length-prefixed message (5-byte gRPC prefix, then `serialize`'s bytes),
   * for a method that can write its answer into the frame directly instead of copying it there.
   */
  serializeFramed?(response: Res): Buffer;
  /**
   * The call's work; may be asynchronous. Throwing (or rejecting) answers with `failure(err)`.
   * `message` is the serialized request; it is the handler's to keep (nothing reuses its memory).
   * `headers` are the call's request headers (so one method object can serve every call).
   */
  handle(request: Req, message: Buffer, headers: IncomingHttpHeaders): Res | Promise<Res>;
  failure(err: unknown): GrpcFailure;
  /** Optional: told of each call refused before its message could be decoded (to count it). */
  refused?(reason: RefusedReason, message: string): void;
  /** Largest accepted request message, bytes (grpc-js's default is 4 MiB). */
  maxReceiveBytes?: number;
}

/**
 * Why a call was refused before decoding: `framing` (no message, a truncated one, or more than
 * one), `encoding` (a compression it does not support or that does not decompress),
 * `too_large` (over maxReceiveBytes, compressed or not).
 */
export type RefusedReason = 'framing' | 'encoding' | 'too_large';

/** The handler a router calls for each stream of its method. */
export type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

/**
 * A unary method as a capability offers it to both transports (the gRPC port's fast path and the
 * dedicated unary port).
 */
export interface UnaryRoute {
  // biome-ignore lint/suspicious/noExplicitAny: routes of different request/response types share one map.
  readonly method: UnaryMethod<any, any>;
  /**
   * Optional: undefined when a new call may be read now, or a promise that settles when it may
   * (the audit queue is full). Until then its stream stays unread: HTTP/2 flow control holds the
   * client's data, and a client that gives up resets it.
   */
  readonly admission?: () => Promise<void> | undefined;
}

const DEFAULT_MAX_RECEIVE = 4 * 1024 * 1024;

// The same headers grpc-js answers with, so clients see no difference between the two paths.
export const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-accept-encoding': 'identity,deflate,gzip', 'grpc-encoding': 'identity' };
const OK_TRAILERS = { 'grpc-status': '0', 'grpc-message': '' };
const RESPOND_OPTIONS = Object.freeze({ waitForTrailers: true });

/** `this` is the stream (EventEmitter listeners are called on their emitter): no closure per call. */
function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

const CALL = Symbol('meshward.unaryCall');
/** The stream carries its call, so its listeners are shared functions rather than closures per call. */
type CallStream = ServerHttp2Stream & { [CALL]: NodeUnaryCall<unknown, unknown> };

function onData(this: CallStream, chunk: Buffer): void {
  const call = this[CALL];
  call.receive(chunk);
  call.budget?.received(call, chunk.length);
}

function onEnd(this: CallStream): void {
  const call = this[CALL];
  call.budget?.finished(call);
  call.received();
}

function onClose(this: CallStream): void {
  const call = this[CALL];
  call.budget?.finished(call);
  call.closed();
}

function ignoreStreamError(): void {
  // A reset or destroyed stream: the client has gone; `close` ends the call.
}

/**
 * `grpc-timeout` in milliseconds (`1S`, `250m`, `100000u` ...), undefined when absent or
 * malformed (gRPC: at most 8 digits and a unit).
 */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const perUnit: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
  return n * perUnit[m[2]!]!;
}

/**
 * `grpc-message` is percent-encoded: every byte outside printable ASCII, and `%` itself
 * (gRPC over HTTP/2, "Responses"). encodeURI, as grpc-js's server does: grpc-js clients decode
 * with decodeURI, which would leave encodeURIComponent's `%3A` (`:`) or `%2F` (`/`) escaped.
 * A lone surrogate (which encodeURI throws on) becomes U+FFFD rather than an unanswered call.
 */
export function encodeGrpcMessage(message: string): string {
  return /^[\x20-\x24\x26-\x7e]*$/.test(message) ? message : encodeURI(message.replace(LONE_SURROGATE, '\ufffd'));
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** How the node:http2 fast path bounds what its calls hold (see session-request-budget.ts). */
export interface StreamHandlerOptions {
  /** Request bytes of unfinished calls per HTTP/2 session (default 16 MiB, as the unary port). */
  maxSessionRequestBytes?: number;
}

/** Serves one call of `method` on `stream`. */
export function serveUnary<Req, Res>(method: UnaryMethod<Req, Res>, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: StreamHandlerOptions = {}): void {
  stream.on('error', ignoreStreamError);
  const contentType = headers['content-type'];
  if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
    // grpc-js answers the same: not a gRPC request at all.
    stream.respond({ ':status': 415 }, { endStream: true });
    return;
  }
  const budget = sessionBudgetOf(stream, options.maxSessionRequestBytes ?? DEFAULT_SESSION_REQUEST_BYTES);
  (stream as CallStream)[CALL] = new NodeUnaryCall(method, stream, headers, budget) as NodeUnaryCall<unknown, unknown>;
  stream.on('data', onData);
  stream.on('end', onEnd);
  stream.on('close', onClose);
}

/** The node:http2 stream handler of `route` (the gRPC port's fast path). */
export function streamHandlerOf(route: UnaryRoute, options: StreamHandlerOptions = {}): StreamHandler {
  const { method, admission } = route;
  if (!admission) return (stream, headers) => serveUnary(method, stream, headers, options);
  return (stream, headers) => {
    const wait = admission();
    if (wait === undefined) {
      serveUnary(method, stream, headers, options);
      return;
    }
    // Reading pauses: the stream is parked unread until admitted (see UnaryRoute.admission).
    stream.on('error', ignoreStreamError);
    void wait.then(() => { if (!stream.destroyed && !stream.closed) serveUnary(method, stream, headers, options); });
  };
}

/** A length-prefixed, uncompressed gRPC message. */
export function framed(message: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

/**
 * One unary call, whatever carries it: the request body arrives through `receive`/`received`,
 * `closed` says the stream is gone, and a transport subclass sends the answer.
 */
export abstract class UnaryCall<Req, Res> {
  private chunks: Buffer[] = [];
  private size = 0;
  private done = false;
  private deadline: NodeJS.Timeout | undefined;
  /** The body was complete and its processing began (decompress, decode, handle). */
  private started = false;
  private settledOnce = false;
  private readonly max: number;

  constructor(
    private readonly method: UnaryMethod<Req, Res>,
    protected readonly headers: IncomingHttpHeaders,
  ) {
    this.max = method.maxReceiveBytes ?? DEFAULT_MAX_RECEIVE;
  }

  /** False once the stream can no longer be answered (reset, closed, or already answered). */
  protected abstract answerable(): boolean;
  /** Sends response headers, the length-prefixed message and OK trailers. */
  protected abstract sendMessage(frame: Buffer): void;
  /** Sends a trailers-only response carrying the failure's status. */
  protected abstract sendFailure(failure: GrpcFailure): void;
  /**
   * Told once when the call's work is over: answered, failed, or closed before its handler ran.
   * A call whose client went away while its handler ran settles when the handler ends.
   */
  protected onSettled(): void {}

  private settle(): void {
    if (this.settledOnce) return;
    this.settledOnce = true;
    this.onSettled();
  }

  receive(chunk: Buffer): void {
    if (this.done) return;
    this.size += chunk.length;
    if (this.size > this.max + 5) {
      this.refuse('too_large', { code: GrpcCode.RESOURCE_EXHAUSTED, message: `Received message larger than max (${this.size - 5} vs. ${this.max})` });
      return;
    }
    this.chunks.push(chunk);
  }

  received(): void {
    if (this.done) return;
    this.started = true;
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    if (body.length < 5) {
      this.refuse('framing', { code: GrpcCode.INTERNAL, message: body.length === 0 ? 'Unary call ended without a request message' : 'Truncated gRPC message frame' });
      return;
    }
    const length = body.readUInt32BE(1);
    if (body.length !== 5 + length) {
      this.refuse('framing', { code: GrpcCode.INTERNAL, message: body.length < 5 + length ? 'Truncated gRPC message frame' : 'Unary call carried more than one request message' });
      return;
    }
    const message = body.subarray(5);
    if (body[0] === 0) {
      this.decoded(message);
      return;
    }
    this.decompress(message);
  }

  closed(): void {
    // Client cancelled, connection lost or the response is complete: nothing more to send.
    this.done = true;
    if (this.deadline) clearTimeout(this.deadline);
    if (!this.started) this.settle();
  }

  private decompress(message: Buffer): void {
    const encoding = this.headers['grpc-encoding'];
    const codec = encoding === 'gzip' ? gunzip : encoding === 'deflate' ? inflate : undefined;
    if (!codec) {
      this.refuse('encoding', { code: GrpcCode.UNIMPLEMENTED, message: `Received message compressed with unsupported encoding "${String(encoding ?? 'identity')}"` });
      return;
    }
    codec(message, { maxOutputLength: this.max }, (err, plain) => {
      if (!err) this.decoded(plain);
      else if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') this.refuse('too_large', { code: GrpcCode.RESOURCE_EXHAUSTED, message: `Could not decompress the request: ${err.message}` });
      else this.refuse('encoding', { code: GrpcCode.INTERNAL, message: `Could not decompress the request: ${err.message}` });
    });
  }

  private decoded(message: Buffer): void {
    if (this.done) {
      this.settle(); // closed while decompressing: the handler never runs
      return;
    }
    let request: Req;
    try {
      request = this.method.deserialize(message);
    } catch (err) {
      this.fail({ code: GrpcCode.INTERNAL, message: `Error deserializing request: ${(err as Error).message}` });
      return;
    }
    let result: Res | Promise<Res>;
    try {
      result = this.method.handle(request, message, this.headers);
    } catch (err) {
      this.fail(this.method.failure(err));
      return;
    }
    if (!(result instanceof Promise)) {
      this.respond(result);
      return;
    }
    this.armDeadline();
    result.then((r) => this.respond(r), (err: unknown) => this.fail(this.method.failure(err)));
  }

  /** Only asynchronous calls can outlive their deadline: a synchronous one answers at once. */
  private armDeadline(): void {
    const ms = parseGrpcTimeout(this.headers['grpc-timeout']);
    if (ms === undefined) return;
    // The handler still runs: the call settles when it ends (its concurrency slot stays taken).
    this.deadline = setTimeout(() => this.answerFailure({ code: GrpcCode.DEADLINE_EXCEEDED, message: 'Deadline exceeded' }), Math.max(0, ms));
  }

  private respond(response: Res): void {
    this.settle();
    if (this.done) return;
    let frame: Buffer;
    try {
      frame = this.method.serializeFramed ? this.method.serializeFramed(response) : framed(this.method.serialize(response));
    } catch (err) {
      this.fail({ code: GrpcCode.INTERNAL, message: `Error serializing response: ${(err as Error).message}` });
      return;
    }
    if (!this.finish()) return;
    this.sendMessage(frame);
  }

  /** Refused before decoding: the method is told (to count it), then the call fails. */
  private refuse(reason: RefusedReason, failure: GrpcFailure): void {
    if (this.done) {
      this.settle();
      return;
    }
    this.method.refused?.(reason, failure.message);
    this.fail(failure);
  }

  /** A trailers-only response carrying the status (as grpc-js sends errors before any message). */
  private fail(failure: GrpcFailure): void {
    this.settle();
    this.answerFailure(failure);
  }

  /** Sends the failure unless the call already ended; does not settle it. */
  private answerFailure(failure: GrpcFailure): void {
    if (this.done || !this.finish()) return;
    this.sendFailure(failure);
  }

  /** Ends the call; false when the stream can no longer be answered (reset by the client). */
  private finish(): boolean {
    this.done = true;
    this.chunks = [];
    if (this.deadline) clearTimeout(this.deadline);
    return this.answerable();
  }
}

/** A call on a node:http2 stream (the gRPC port's fast path), counted in its session's request budget. */
class NodeUnaryCall<Req, Res> extends UnaryCall<Req, Res> implements BudgetedCall {
  held = 0;
  paused = false;

  constructor(method: UnaryMethod<Req, Res>, readonly stream: ServerHttp2Stream, headers: IncomingHttpHeaders, readonly budget: SessionRequestBudget | undefined) {
    super(method, headers);
    budget?.started(this);
  }

  protected answerable(): boolean {
    return !this.stream.destroyed && !this.stream.closed && !this.stream.headersSent;
  }

  protected sendMessage(frame: Buffer): void {
    this.stream.respond(RESPONSE_HEADERS, RESPOND_OPTIONS);
    // Emitted once per stream: `on` spares the `once` wrapper.
    this.stream.on('wantTrailers', sendOkTrailers);
    this.stream.end(frame);
  }

  protected sendFailure(failure: GrpcFailure): void {
    this.stream.respond({ ...RESPONSE_HEADERS, ...failureTrailers(failure) }, { endStream: true });
  }
}

/** The status trailers of a failed call (sent in a trailers-only response). */
export function failureTrailers(failure: GrpcFailure): Record<string, string> {
  return { ...failure.trailers, 'grpc-status': String(failure.code), 'grpc-message': encodeGrpcMessage(failure.message) };
}
