/** One HTTP/2 stream of the unary port and its unary call (one object per call; see connection.ts). */
import { failureTrailers, type GrpcFailure, UnaryCall, type UnaryRoute } from '../grpc-unary-stream.ts';
import { DEFAULT_WINDOW_SIZE } from './frames.ts';

/** What a stream's call needs of its connection: where answers go, and where settling is told. */
export interface StreamOwner {
  /** The client's SETTINGS_INITIAL_WINDOW_SIZE: a new stream's send window. */
  readonly peerInitialWindow: number;
  answer(stream: H2Stream, message: Buffer): void;
  answerTrailersOnly(stream: H2Stream, trailers: Record<string, string>): void;
  settled(stream: H2Stream): void;
}

/** A stream and its unary call (one object per call). */
export class H2Stream extends UnaryCall<unknown, unknown> {
  /** Bytes we may still send on this stream (the client's window for it). */
  sendWindow: number;
  /** The client may still send this many bytes before we return credit. */
  recvWindow = DEFAULT_WINDOW_SIZE;
  /** Received bytes not yet credited back. */
  uncredited = 0;
  /** Request bytes this stream holds toward the connection's budget (until its request ends). */
  buffered = 0;
  /** When its HEADERS arrived, then when its answer was ready (ms, for the stream timeout). */
  since = Date.now();
  remoteEnded = false;
  /** Data held while the call waits for admission (flow control bounds it to the stream window). */
  parked: Buffer[] | undefined;
  /** The answer is out (or the stream was reset): only the call's handler may still run. */
  localClosed = false;
  /** The call's work is over (UnaryCall.onSettled). */
  settledCall = false;
  /** Call settled and stream closed: its concurrency slot is free. */
  released = false;
  /** Our answer's bytes waiting for flow-control window, and whether trailers follow. */
  pendingData: Buffer | undefined;
  pendingTrailers: Buffer | undefined;

  constructor(
    route: UnaryRoute,
    headers: Record<string, string>,
    readonly id: number,
    private readonly connection: StreamOwner,
  ) {
    super(route.method, headers);
    this.sendWindow = connection.peerInitialWindow;
  }

  protected answerable(): boolean {
    return !this.localClosed;
  }

  protected sendMessage(message: Buffer): void {
    this.connection.answer(this, message);
  }

  protected sendFailure(failure: GrpcFailure): void {
    this.connection.answerTrailersOnly(this, failureTrailers(failure));
  }

  protected override onSettled(): void {
    this.connection.settled(this);
  }
}
