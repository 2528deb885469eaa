/**
 * The gRPC port (node:http2) bounds request bytes per connection as the unary port does
 * (h2/connection.ts, `maxBufferedRequestBytes`): calls whose request has not ended hold at most
 * `limit` bytes per HTTP/2 session. Past it, a call that has received more than one stream window
 * is paused: node stops reading its stream, so the window is not returned and its client stalls
 * instead of filling memory (1,000 streams × a 4 MiB message per connection otherwise). The
 * session's oldest unfinished call is never paused, so calls that exceed the budget together end
 * one after another rather than all waiting for their clients to give up. A call within one
 * window is never paused: small requests (every ordinary Check) are never held up by large ones.
 *
 * It covers the calls whose client sends one message and then ends its side: the fast path's
 * (Check, CreateCertificate: its call object is counted directly, grpc-unary-stream.ts) and
 * grpc-js's unary and server-streaming methods (RLS, health, SDS FetchSecrets: `trackWhenRead`,
 * from the port guard). A bidirectional stream (ADS, SDS StreamSecrets) never ends its side, so
 * counting until then would fill the budget with messages long since handled; those methods
 * authenticate the caller before they read a message.
 */
import type { Http2Session, ServerHttp2Stream } from 'node:http2';

export const DEFAULT_SESSION_REQUEST_BYTES = 16 << 20;
/** HTTP/2's default stream window: what a client may send on a stream before any credit. */
const ONE_WINDOW = 65_535;

/** One call's request as the budget sees it (the fast path's call object is one itself). */
export interface BudgetedCall {
  readonly stream: ServerHttp2Stream;
  /** Request bytes received so far (while unfinished). */
  held: number;
  /** Paused by the budget (a stream paused by its reader is not ours to resume). */
  paused: boolean;
}

export class SessionRequestBudget {
  #held = 0;
  /** Unfinished requests, oldest first (a Set keeps insertion order). */
  readonly #unfinished = new Set<BudgetedCall>();

  constructor(readonly limit: number) {}

  started(request: BudgetedCall): void {
    this.#unfinished.add(request);
  }

  received(request: BudgetedCall, bytes: number): void {
    request.held += bytes;
    this.#held += bytes;
    if (this.#held > this.limit && request.held > ONE_WINDOW && !request.paused && request !== this.#oldest()) {
      request.paused = true;
      request.stream.pause();
    }
  }

  /** The request ended or its stream closed: its bytes leave the budget; paused requests may read again. */
  finished(request: BudgetedCall): void {
    if (!this.#unfinished.delete(request)) return;
    this.#held -= request.held;
    request.held = 0;
    request.paused = false;
    if (this.#held <= this.limit) {
      for (const waiting of this.#unfinished) this.#resume(waiting);
      return;
    }
    const oldest = this.#oldest();
    if (oldest) this.#resume(oldest);
  }

  #oldest(): BudgetedCall | undefined {
    for (const request of this.#unfinished) return request;
    return undefined;
  }

  #resume(request: BudgetedCall): void {
    if (!request.paused) return;
    request.paused = false;
    if (!request.stream.destroyed) request.stream.resume();
  }
}

const budgets = new WeakMap<Http2Session, SessionRequestBudget>();

/** The budget of `stream`'s session (created with `limit` by the session's first request). */
export function sessionBudgetOf(stream: ServerHttp2Stream, limit: number): SessionRequestBudget | undefined {
  const session = stream.session;
  if (!session) return undefined;
  let budget = budgets.get(session);
  if (!budget) {
    budget = new SessionRequestBudget(limit);
    budgets.set(session, budget);
  }
  return budget;
}

type Tracked = ServerHttp2Stream & { [TRACKED]: BudgetedCall & { readonly budget: SessionRequestBudget } };
const TRACKED = Symbol('meshward.trackedRequest');

// Shared listeners (`this` is the stream): no closures per call on the hot path.
function onTrackedData(this: Tracked, chunk: Buffer): void {
  const request = this[TRACKED];
  request.budget.received(request, chunk.length);
}

function onTrackedDone(this: Tracked): void {
  const request = this[TRACKED];
  request.budget.finished(request);
}

/** Counts `stream`'s request bytes in its session's budget until the request ends or the stream closes. */
function trackRequest(stream: ServerHttp2Stream, limit: number = DEFAULT_SESSION_REQUEST_BYTES): void {
  const budget = sessionBudgetOf(stream, limit);
  if (!budget || (stream as Partial<Tracked>)[TRACKED]) return;
  const request = { stream, held: 0, paused: false, budget };
  (stream as Tracked)[TRACKED] = request;
  budget.started(request);
  stream.on('data', onTrackedData);
  // `finished` is idempotent: plain listeners spare `once`'s wrappers.
  stream.on('end', onTrackedDone);
  stream.on('close', onTrackedDone);
}

/**
 * Tracks `stream` once its reader starts reading ('resume': the fast path's call attaching its
 * 'data' listener, grpc-js's `startRead`), never before: a stream left unread on purpose (a
 * Check parked until the audit queue has room) must not be made to flow by the budget.
 */
export function trackWhenRead(stream: ServerHttp2Stream, limit: number = DEFAULT_SESSION_REQUEST_BYTES): void {
  stream.once('resume', () => trackRequest(stream, limit));
}
