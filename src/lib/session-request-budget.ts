/**
 * The gRPC port's fast path (node:http2) bounds request bytes per connection as the unary port
 * does (h2/connection.ts, `maxBufferedRequestBytes`): calls whose request has not ended hold at
 * most `limit` bytes per HTTP/2 session. Past it, a call that has received more than one stream
 * window is paused: node stops reading its stream, so the window is not returned and its client
 * stalls instead of filling memory (1,000 streams × a 4 MiB message per connection otherwise).
 * The session's oldest unfinished call is never paused, so calls that exceed the budget together
 * end one after another rather than all waiting for their clients to give up. A call within one
 * window is never paused: small requests (every ordinary Check) are never held up by large ones.
 */
import type { Http2Session, ServerHttp2Stream } from 'node:http2';

export const DEFAULT_SESSION_REQUEST_BYTES = 16 << 20;
/** HTTP/2's default stream window: what a client may send on a stream before any credit. */
const ONE_WINDOW = 65_535;

/** A call as the budget sees it. */
export interface BudgetedCall {
  readonly stream: ServerHttp2Stream;
  /** Request bytes received so far (while unfinished). */
  held: number;
  paused: boolean;
}

export class SessionRequestBudget {
  #held = 0;
  /** Unfinished calls, oldest first (a Set keeps insertion order). */
  readonly #unfinished = new Set<BudgetedCall>();

  constructor(readonly limit: number) {}

  get held(): number {
    return this.#held;
  }

  started(call: BudgetedCall): void {
    this.#unfinished.add(call);
  }

  received(call: BudgetedCall, bytes: number): void {
    call.held += bytes;
    this.#held += bytes;
    if (this.#held > this.limit && call.held > ONE_WINDOW && !call.paused && call !== this.#oldest()) {
      call.paused = true;
      call.stream.pause();
    }
  }

  /** The call's request ended or its stream closed: its bytes leave the budget; paused calls may read again. */
  finished(call: BudgetedCall): void {
    if (!this.#unfinished.delete(call)) return;
    this.#held -= call.held;
    call.held = 0;
    call.paused = false;
    if (this.#held <= this.limit) {
      for (const waiting of this.#unfinished) this.#resume(waiting);
      return;
    }
    const oldest = this.#oldest();
    if (oldest) this.#resume(oldest);
  }

  #oldest(): BudgetedCall | undefined {
    for (const call of this.#unfinished) return call;
    return undefined;
  }

  #resume(call: BudgetedCall): void {
    if (!call.paused) return;
    call.paused = false;
    if (!call.stream.destroyed) call.stream.resume();
  }
}

const budgets = new WeakMap<Http2Session, SessionRequestBudget>();

/** The budget of `stream`'s session (created with `limit` by the session's first call). */
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
