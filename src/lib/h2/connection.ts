/**
 * One server-side HTTP/2 connection that serves unary gRPC calls (RFC 9113), for the dedicated
 * unary port (server.ts).
 *
 * Why not node:http2: its per-call cost (session and stream objects, nghttp2 callbacks crossing
 * into JavaScript, header objects, Duplex streams) measured ≈ 27 µs of CPU per unary call on this
 * project's benchmark machine, a third of an audited Check; this connection does the same work in
 * a few µs because a unary call needs little of HTTP/2: one request message, one answer, no push,
 * no priorities (docs/authz.md, "The unary port"). Everything that is not a unary call (SDS, ADS,
 * streaming) stays on the gRPC port.
 *
 * What a hostile client can send is bounded here: frame size, header block size (compressed and
 * decoded), concurrent streams (a stream keeps its slot until its call finishes and its answer is
 * out, so neither rapid resets nor answers held by a closed window exceed the limit), resets, empty
 * frames, and the output a client makes us queue without reading it (reading pauses until it drains).
 */
import type { Socket } from 'node:net';
import { failureTrailers, RESPONSE_HEADERS, type UnaryRoute } from '../grpc-unary-stream.ts';
import {
  DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW_SIZE, errorName, FRAME_HEADER_SIZE, Flag, FrameType, frame, goawayFrame, H2Error, headerFrames, MAX_WINDOW_SIZE,
  PREFACE, pingAckFrame, rstStreamFrame, SETTINGS_ACK, Setting, settingsFrame, windowUpdateFrame, writeFrameHeader,
} from './frames.ts';
import { type DecodedHeaders, encodeHeaderBlock, HeaderListTooLargeError, HpackDecoder, HpackError } from './hpack.ts';
import { malformedRequest } from './request.ts';
import { H2Stream, type StreamOwner } from './stream.ts';

export interface H2Limits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS: calls in progress per connection, reset ones included. */
  maxConcurrentStreams: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE, also the most compressed header block bytes accepted. */
  maxHeaderListSize: number;
  /** A connection with no call in progress for this long is closed (GOAWAY NO_ERROR). */
  idleTimeoutMs: number;
  /** The client preface and first SETTINGS must arrive within this. */
  prefaceTimeoutMs: number;
  /**
   * A stream whose request has not ended this long after its HEADERS, or whose answer has not all
   * been sent (the client's window stays closed) this long after it was ready, is reset (CANCEL).
   */
  streamTimeoutMs: number;
  /**
   * Request bytes held for calls whose request has not ended, per connection. Past it, only the
   * oldest unfinished stream gets window credit until some request ends or is reset: the client's
   * other streams stall instead of filling memory (1,000 streams × 4 MiB otherwise), and the
   * oldest can always end, so requests that exceed the budget together are served one after
   * another rather than all left waiting for the stream timeout.
   */
  maxBufferedRequestBytes: number;
}

export const DEFAULT_H2_LIMITS: H2Limits = {
  maxConcurrentStreams: 1000, maxHeaderListSize: 65_536, idleTimeoutMs: 5 * 60_000, prefaceTimeoutMs: 10_000, streamTimeoutMs: 30_000, maxBufferedRequestBytes: 16 << 20,
};

/** What the connection reports to its server (metrics, logs). */
export interface H2Observer {
  /** The connection was closed for a protocol violation (or a limit) with this GOAWAY code. */
  connectionError(code: string, reason: string): void;
  /** A stream was refused or reset by us for a stream-level error or limit. */
  streamError(code: string, reason: string): void;
}

/** Our receive window for the whole connection; streams keep the default 65,535 (see credit). */
const CONNECTION_WINDOW = 1 << 20;
/** Window credit is returned in batches of at least this many bytes (fewer WINDOW_UPDATE frames). */
const STREAM_CREDIT_BATCH = 32_768;
/** Writes queued beyond this pause reading until the socket drains. */
const OUTPUT_HIGH_WATER = 1 << 20;
/** Frames that carry nothing (empty DATA, CONTINUATION or unknown) tolerated per connection. */
const MAX_EMPTY_FRAMES = 1000;
/** SETTINGS frames that change SETTINGS_INITIAL_WINDOW_SIZE tolerated per connection (each walks every stream). */
const MAX_WINDOW_SETTINGS = 1000;
/** CONTINUATION frames tolerated in one header block. */
const MAX_CONTINUATIONS = 64;
/** After we end a connection, how long the peer has to close its side. */
const LINGER_MS = 1000;
/** After a graceful end, how long a peer has to read our last answers. */
const MAX_DRAIN_MS = 30_000;
/** Client resets of unanswered calls tolerated before the ratio check (rapid reset, CVE-2023-44487). */
const RESET_ALLOWANCE = 1000;
/** Streams we reset that are remembered, so that frames their client sent meanwhile are ignored. */
const RECENT_RESETS = 128;
/** The first GOAWAY of a graceful close names the largest stream id (RFC 9113 §6.8). */
const MAX_STREAM_ID = 2 ** 31 - 1;
/** A graceful close waits this long at most for the client's PING ACK between its two GOAWAYs. */
const SHUTDOWN_RTT_MS = 1000;
const SHUTDOWN_PING = Buffer.from('mw-close', 'latin1');
/** HPACK "dynamic table size update" to 0 (RFC 7541 §6.3: 001 prefix, 5-bit integer 0). */
const TABLE_SIZE_ZERO = Buffer.from([0x20]);

const RESPONSE_BLOCK = headerBlockOf(RESPONSE_HEADERS);
const OK_TRAILERS_BLOCK = encodeHeaderBlock([['grpc-status', '0'], ['grpc-message', '']]);
class ConnectionError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

export class H2Connection implements StreamOwner {
  peerInitialWindow = DEFAULT_WINDOW_SIZE;
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private connSendWindow = DEFAULT_WINDOW_SIZE;
  private connRecvWindow = CONNECTION_WINDOW;
  private connUncredited = 0;
  private readonly decoder: HpackDecoder;
  private readonly streams = new Map<number, H2Stream>();
  /** Streams holding a concurrency slot: their call has not settled or their stream is still open. */
  private inProgress = 0;
  private lastStreamId = 0;
  /** Bytes received but not yet parsed: kept as chunks until a whole frame is there (see onData). */
  private input: Buffer[] = [];
  private inputBytes = 0;
  /** How many bytes the next step needs (preface, frame header or whole frame). */
  private needed = PREFACE.length;
  /** Request bytes held by streams whose request has not ended (H2Limits.maxBufferedRequestBytes). */
  private bufferedRequestBytes = 0;
  /** Streams we reset lately, oldest first (see sendReset). */
  private readonly recentlyReset = new Set<number>();
  /** Streams denied window credit while over that budget. */
  private readonly starved = new Set<H2Stream>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private prefaceSeen = false;
  private settingsSeen = false;
  /** A header block being assembled from HEADERS + CONTINUATION. */
  private block: { streamId: number; endStream: boolean; parts: Buffer[]; size: number; frames: number } | undefined;
  private emptyFrames = 0;
  private windowSettings = 0;
  private streamsOpened = 0;
  private unansweredResets = 0;
  /** Streams whose answer waits for connection window (their own is open), oldest first. */
  private readonly blocked = new Set<H2Stream>();
  private goingAway = false;
  private dead = false;
  private corked = false;
  private readPaused = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private prefaceTimer: NodeJS.Timeout | undefined;
  /** The next header block must begin with a dynamic table size update (see applySetting). */
  private tableSizeUpdatePending = false;
  /** Set between the two GOAWAYs of a graceful close (see shutdown). */
  private shutdownTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly routes: ReadonlyMap<string, UnaryRoute>,
    private readonly limits: H2Limits,
    private readonly observer: H2Observer,
  ) {
    this.decoder = new HpackDecoder({ maxHeaderListSize: limits.maxHeaderListSize });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
    this.prefaceTimer = setTimeout(() => this.fail(new ConnectionError(H2Error.PROTOCOL_ERROR, 'no HTTP/2 preface and SETTINGS in time')), limits.prefaceTimeoutMs);
    this.prefaceTimer.unref();
    this.write(settingsFrame([
      [Setting.MAX_CONCURRENT_STREAMS, limits.maxConcurrentStreams],
      [Setting.MAX_HEADER_LIST_SIZE, limits.maxHeaderListSize],
      [Setting.ENABLE_PUSH, 0],
    ]));
    this.write(windowUpdateFrame(0, CONNECTION_WINDOW - DEFAULT_WINDOW_SIZE));
    this.armIdle();
  }

  /**
   * Graceful close in two steps (RFC 9113 §6.8): a GOAWAY naming the largest stream id tells the
   * client to open no more streams, and a PING measures when streams it had already sent have
   * arrived; on its ACK (or after SHUTDOWN_RTT_MS) the final GOAWAY names the last stream taken.
   * Calls in progress finish, then the connection ends. A single GOAWAY would drop the calls in
   * flight, which Envoy's ext_authz (no retry policy) would count as failures.
   */
  shutdown(): void {
    if (this.dead || this.goingAway || this.shutdownTimer) return;
    this.write(goawayFrame(MAX_STREAM_ID, H2Error.NO_ERROR));
    this.write(frame(FrameType.PING, 0, 0, SHUTDOWN_PING));
    this.shutdownTimer = setTimeout(() => this.finishShutdown(), SHUTDOWN_RTT_MS);
    this.shutdownTimer.unref();
  }

  private finishShutdown(): void {
    clearTimeout(this.shutdownTimer);
    if (this.dead || this.goingAway) return;
    this.goingAway = true;
    this.write(goawayFrame(this.lastStreamId, H2Error.NO_ERROR));
    this.endIfDone();
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.stopTimers();
    this.abandonStreams();
    this.input = [];
    this.socket.destroy();
  }

  get closed(): boolean {
    return this.dead;
  }

  // ---- input ----

  private onData(chunk: Buffer): void {
    if (this.dead) return;
    this.input.push(chunk);
    this.inputBytes += chunk.length;
    // A frame trickled in many small segments is joined once, when it is all there (joining on
    // every segment would copy up to 16 KiB per byte received).
    if (this.inputBytes < this.needed) {
      if (!this.prefaceSeen) this.checkPartialPreface();
      return;
    }
    const buf = this.input.length === 1 ? this.input[0]! : Buffer.concat(this.input, this.inputBytes);
    this.input = [];
    this.inputBytes = 0;
    try {
      let at = this.prefaceSeen ? 0 : this.readPreface(buf);
      this.needed = FRAME_HEADER_SIZE;
      while (!this.dead && buf.length - at >= FRAME_HEADER_SIZE) {
        const length = (buf[at]! << 16) | (buf[at + 1]! << 8) | buf[at + 2]!;
        // We never raise SETTINGS_MAX_FRAME_SIZE above its initial value.
        if (length > DEFAULT_MAX_FRAME_SIZE) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, `frame of ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE`);
        if (buf.length - at < FRAME_HEADER_SIZE + length) {
          this.needed = FRAME_HEADER_SIZE + length;
          break;
        }
        const type = buf[at + 3]!;
        const flags = buf[at + 4]!;
        const streamId = buf.readUInt32BE(at + 5) & 0x7fffffff;
        const payload = buf.subarray(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + length);
        at += FRAME_HEADER_SIZE + length;
        this.onFrame(type, flags, streamId, payload);
      }
      if (at < buf.length && !this.dead) {
        this.input.push(buf.subarray(at));
        this.inputBytes = buf.length - at;
      }
    } catch (err) {
      this.fail(err);
    }
  }

  /** Refuses at once what cannot become the preface (an HTTP/1.1 request, TLS to a plain port). */
  private checkPartialPreface(): void {
    const head = Buffer.concat(this.input, this.inputBytes);
    if (!PREFACE.subarray(0, head.length).equals(head)) this.fail(new ConnectionError(H2Error.PROTOCOL_ERROR, 'not an HTTP/2 connection preface'));
  }

  /** Checks the client preface at the start of `buf`; returns its length. */
  private readPreface(buf: Buffer): number {
    if (!PREFACE.equals(buf.subarray(0, PREFACE.length))) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'not an HTTP/2 connection preface');
    this.prefaceSeen = true;
    return PREFACE.length;
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (!this.settingsSeen && type !== FrameType.SETTINGS) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'the first frame was not SETTINGS');
    if (this.block && type !== FrameType.CONTINUATION) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'a header block was interrupted by another frame');
    switch (type) {
      case FrameType.DATA: this.onDataFrame(flags, streamId, payload); return;
      case FrameType.HEADERS: this.onHeaders(flags, streamId, payload); return;
      case FrameType.PRIORITY: this.onPriority(streamId, payload); return;
      case FrameType.RST_STREAM: this.onRstStream(streamId, payload); return;
      case FrameType.SETTINGS: this.onSettings(flags, streamId, payload); return;
      case FrameType.PUSH_PROMISE: throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'a client sent PUSH_PROMISE');
      case FrameType.PING: this.onPing(flags, streamId, payload); return;
      case FrameType.GOAWAY: this.onGoaway(streamId, payload); return;
      case FrameType.WINDOW_UPDATE: this.onWindowUpdate(streamId, payload); return;
      case FrameType.CONTINUATION: this.onContinuation(flags, streamId, payload); return;
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1), but they cost a parse each.
        this.countEmpty();
    }
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & Flag.ACK) {
      if (payload.length !== 0) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'SETTINGS payload not a multiple of 6 bytes');
    const initialWindow = this.peerInitialWindow;
    for (let i = 0; i < payload.length; i += 6) this.applySetting(payload.readUInt16BE(i), payload.readUInt32BE(i + 2));
    // Once per frame, however many INITIAL_WINDOW_SIZE entries it repeats (each would walk every stream).
    const delta = this.peerInitialWindow - initialWindow;
    if (delta !== 0) this.moveStreamWindows(delta);
    if (!this.settingsSeen) {
      this.settingsSeen = true;
      clearTimeout(this.prefaceTimer);
    }
    this.write(SETTINGS_ACK);
    if (delta > 0) this.flushBlocked();
  }

  /** RFC 9113 §6.9.2: a new SETTINGS_INITIAL_WINDOW_SIZE moves every stream window by the difference. */
  private moveStreamWindows(delta: number): void {
    if (++this.windowSettings > MAX_WINDOW_SETTINGS) throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, 'too many SETTINGS_INITIAL_WINDOW_SIZE changes');
    for (const stream of this.streams.values()) {
      stream.sendWindow += delta;
      if (stream.sendWindow > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'a stream window grew above 2^31-1');
      if (stream.pendingData && stream.sendWindow > 0) this.blocked.add(stream);
    }
  }

  private applySetting(id: number, value: number): void {
    switch (id) {
      case Setting.ENABLE_PUSH:
        if (value > 1) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH not 0 or 1');
        return;
      case Setting.INITIAL_WINDOW_SIZE:
        if (value > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1');
        this.peerInitialWindow = value;
        return;
      case Setting.MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME_SIZE || value > 16_777_215) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE out of range');
        this.peerMaxFrameSize = value;
        return;
      case Setting.HEADER_TABLE_SIZE:
        // Our encoder never indexes, so any size suits it; but a decoder whose table shrank expects
        // a size update at the start of our next block (RFC 7541 §4.2; nghttp2 fails without one).
        this.tableSizeUpdatePending = true;
        return;
      default:
      // MAX_CONCURRENT_STREAMS: we open no streams. MAX_HEADER_LIST_SIZE is advisory. Unknown
      // settings are ignored.
    }
  }

  private onPing(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'PING payload not 8 bytes');
    if (!(flags & Flag.ACK)) this.write(pingAckFrame(payload));
    else if (this.shutdownTimer && payload.equals(SHUTDOWN_PING)) this.finishShutdown();
  }

  private onGoaway(streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8 bytes');
    // The client opens no more streams; the calls it sent are still answered.
    this.goingAway = true;
    this.endIfDone();
  }

  private onPriority(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    if (payload.length !== 5) {
      this.resetStream(streamId, H2Error.FRAME_SIZE_ERROR, 'PRIORITY payload not 5 bytes');
      return;
    }
    // Priorities are advisory and meaningless for single-message calls: ignored, but counted.
    this.countEmpty();
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'WINDOW_UPDATE payload not 4 bytes');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on the connection');
      this.connSendWindow += increment;
      if (this.connSendWindow > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      this.flushBlocked();
      return;
    }
    const stream = this.openStream(streamId);
    if (!stream) return;
    if (increment === 0) {
      this.resetStream(streamId, H2Error.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on a stream');
      return;
    }
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW_SIZE) {
      this.resetStream(streamId, H2Error.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
      return;
    }
    if (stream.pendingData) this.pump(stream);
  }

  private onRstStream(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'RST_STREAM payload not 4 bytes');
    const stream = this.openStream(streamId);
    if (!stream) return;
    if (!stream.localClosed && ++this.unansweredResets > RESET_ALLOWANCE && this.unansweredResets * 2 > this.streamsOpened) {
      throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, 'too many streams reset before their answer');
    }
    this.closeStream(stream);
  }

  private onDataFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'DATA on stream 0');
    const length = payload.length;
    // Flow control counts the whole frame payload, padding included (RFC 9113 §6.9.1).
    this.connRecvWindow -= length;
    if (this.connRecvWindow < 0) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    this.creditConnection(length);
    const data = flags & Flag.PADDED ? unpad(payload, 0) : payload;
    const end = (flags & Flag.END_STREAM) !== 0;
    // Counted before the stream lookup: empty DATA on a closed stream costs a parse all the same.
    if (data.length === 0 && !end) this.countEmpty();
    const stream = this.openStream(streamId);
    if (!stream) return; // reset or answered: its data is dropped (the connection credit is returned)
    if (stream.remoteEnded) {
      this.resetStream(streamId, H2Error.STREAM_CLOSED, 'DATA after END_STREAM');
      return;
    }
    stream.recvWindow -= length;
    if (stream.recvWindow < 0) {
      this.resetStream(streamId, H2Error.FLOW_CONTROL_ERROR, 'DATA beyond the stream window');
      return;
    }
    stream.buffered += data.length;
    this.bufferedRequestBytes += data.length;
    if (stream.parked) {
      if (data.length > 0) stream.parked.push(data);
      stream.uncredited += length;
      if (end) stream.remoteEnded = true;
      return;
    }
    stream.uncredited += length;
    if (data.length > 0) stream.receive(data);
    if (end) this.endOfRequest(stream);
    else this.creditStream(stream, false);
  }

  private onHeaders(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'HEADERS on stream 0');
    const priority = flags & Flag.PRIORITY ? 5 : 0;
    if (payload.length < priority) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'HEADERS shorter than its priority fields');
    const fragment = flags & Flag.PADDED ? unpad(payload, priority) : payload.subarray(priority);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) {
      this.onHeaderBlock(streamId, endStream, fragment);
      return;
    }
    this.block = { streamId, endStream, parts: [fragment], size: fragment.length, frames: 0 };
    this.checkBlockSize(this.block.size);
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.block;
    if (!block || block.streamId !== streamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'CONTINUATION without a header block in progress on that stream');
    block.parts.push(payload);
    block.size += payload.length;
    if (++block.frames > MAX_CONTINUATIONS) throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, `a header block of more than ${MAX_CONTINUATIONS} CONTINUATION frames`);
    this.checkBlockSize(block.size);
    if (!(flags & Flag.END_HEADERS)) return;
    this.block = undefined;
    this.onHeaderBlock(streamId, block.endStream, Buffer.concat(block.parts, block.size));
  }

  /** A compressed block cannot be decoded partly, so one over the limit ends the connection. */
  private checkBlockSize(size: number): void {
    if (size > this.limits.maxHeaderListSize) throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, `a header block larger than ${this.limits.maxHeaderListSize} bytes`);
  }

  private onHeaderBlock(streamId: number, endStream: boolean, block: Buffer): void {
    // The block is decoded whatever happens to the stream, to keep the HPACK table in step.
    let decoded: DecodedHeaders | undefined;
    let tooLarge = false;
    try {
      decoded = this.decoder.decode(block);
    } catch (err) {
      if (err instanceof HeaderListTooLargeError) tooLarge = true;
      else if (err instanceof HpackError) throw new ConnectionError(H2Error.COMPRESSION_ERROR, err.message);
      else throw err;
    }
    const existing = this.streams.get(streamId);
    if (existing) {
      // Request trailers: they must end the stream; their content means nothing to a unary call.
      if (!endStream || existing.remoteEnded) {
        this.resetStream(streamId, H2Error.PROTOCOL_ERROR, 'HEADERS on an open stream without END_STREAM');
        return;
      }
      if (existing.parked) existing.remoteEnded = true;
      else this.endOfRequest(existing);
      return;
    }
    if (streamId % 2 === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'a client opened an even-numbered stream');
    if (streamId <= this.lastStreamId) {
      // Trailers in flight when we reset the stream are ignored (their block was decoded above).
      if (this.recentlyReset.has(streamId)) {
        this.countEmpty();
        return;
      }
      throw new ConnectionError(H2Error.STREAM_CLOSED, 'HEADERS on a closed stream');
    }
    this.lastStreamId = streamId;
    if (this.goingAway) return; // after GOAWAY, new streams are ignored (RFC 9113 §6.8)
    this.streamsOpened++;
    if (tooLarge || !decoded) {
      this.refuse(streamId, endStream, 431, `header list larger than ${this.limits.maxHeaderListSize} bytes`);
      return;
    }
    this.openCall(streamId, endStream, decoded);
  }

  private openCall(streamId: number, endStream: boolean, decoded: DecodedHeaders): void {
    const headers = decoded.headers;
    const malformed = malformedRequest(decoded);
    if (malformed) {
      this.resetStream(streamId, H2Error.PROTOCOL_ERROR, malformed);
      return;
    }
    if (headers[':method'] !== 'POST') {
      this.refuse(streamId, endStream, 405, `method ${headers[':method']} (gRPC calls are POST)`);
      return;
    }
    const contentType = headers['content-type'];
    if (contentType === undefined || !contentType.startsWith('application/grpc')) {
      this.refuse(streamId, endStream, 415, 'not a gRPC request');
      return;
    }
    if (this.inProgress >= this.limits.maxConcurrentStreams) {
      this.resetStream(streamId, H2Error.REFUSED_STREAM, 'concurrent stream limit');
      return;
    }
    const path = headers[':path']!;
    const route = this.routes.get(path);
    if (!route) {
      this.writeHeaders(streamId, trailersOnlyBlock(failureTrailers({ code: 12, message: `The server does not implement the method ${path}` })), true);
      if (!endStream) this.sendReset(streamId, H2Error.NO_ERROR);
      return;
    }
    const stream = new H2Stream(route, headers, streamId, this);
    this.streams.set(streamId, stream);
    this.inProgress++;
    clearTimeout(this.idleTimer);
    this.sweepTimer ??= setInterval(() => this.sweep(), Math.min(1000, this.limits.streamTimeoutMs)).unref();
    const wait = route.admission?.();
    if (wait !== undefined) {
      // Parked unread: no stream credit is returned, so the client can send at most one window.
      stream.parked = [];
      if (endStream) stream.remoteEnded = true;
      wait.then(() => this.unpark(stream), () => this.unpark(stream));
      return;
    }
    if (endStream) this.endOfRequest(stream);
  }

  private unpark(stream: H2Stream): void {
    const held = stream.parked;
    stream.parked = undefined;
    if (this.dead || stream.localClosed || !held) return;
    for (const data of held) stream.receive(data);
    if (stream.remoteEnded) this.endOfRequest(stream);
    else this.creditStream(stream, true);
  }

  private endOfRequest(stream: H2Stream): void {
    stream.remoteEnded = true;
    this.unbuffer(stream);
    stream.received();
  }

  /** The stream's request bytes no longer count toward the budget: starved streams may get credit. */
  private unbuffer(stream: H2Stream): void {
    this.bufferedRequestBytes -= stream.buffered;
    stream.buffered = 0;
    // Even with no bytes freed, the stream may have been the oldest unfinished one.
    if (this.starved.size === 0) return;
    if (this.bufferedRequestBytes > this.limits.maxBufferedRequestBytes) {
      // Still over: the oldest unfinished stream may now be one that starved.
      const oldest = this.oldestReceiving();
      if (oldest && this.starved.delete(oldest)) this.creditStream(oldest, true);
      return;
    }
    for (const waiting of this.starved) {
      if (this.bufferedRequestBytes > this.limits.maxBufferedRequestBytes) return;
      this.starved.delete(waiting);
      if (this.streams.get(waiting.id) === waiting && !waiting.parked) this.creditStream(waiting, true);
    }
  }

  /**
   * The unfinished stream opened first (streams are kept in id order): past the budget it alone
   * keeps window credit, so it can end. Its bytes beyond the budget are bounded by the largest
   * message a call accepts (4 MiB). Scanned only when over the budget.
   */
  private oldestReceiving(): H2Stream | undefined {
    for (const stream of this.streams.values()) if (!stream.remoteEnded && !stream.parked) return stream;
    return undefined;
  }

  /**
   * A call's work is over. Its concurrency slot is held until then and until its stream closes: a
   * client that resets streams whose calls still run (the rapid-reset attack), or that never opens
   * its window to our answers, cannot have more of them than SETTINGS_MAX_CONCURRENT_STREAMS.
   */
  settled(stream: H2Stream): void {
    if (stream.settledCall) return;
    stream.settledCall = true;
    if (this.streams.get(stream.id) !== stream) this.release(stream);
  }

  private release(stream: H2Stream): void {
    if (stream.released) return;
    stream.released = true;
    this.inProgress--;
    this.endIfDone();
    if (this.inProgress === 0) this.armIdle();
  }

  // ---- output ----

  /** Called by a stream's call with its length-prefixed answer. */
  answer(stream: H2Stream, message: Buffer): void {
    if (this.dead) return;
    stream.localClosed = true;
    stream.since = Date.now();
    this.writeHeaders(stream.id, RESPONSE_BLOCK, false);
    stream.pendingData = message;
    stream.pendingTrailers = OK_TRAILERS_BLOCK;
    this.pump(stream);
  }

  /** Called by a stream's call with a failure's status (a trailers-only answer). */
  answerTrailersOnly(stream: H2Stream, trailers: Record<string, string>): void {
    if (this.dead) return;
    stream.localClosed = true;
    this.writeHeaders(stream.id, trailersOnlyBlock(trailers), true);
    this.answered(stream);
  }

  /** Sends what flow control allows of the stream's answer; true when all of it is out. */
  private flushStream(stream: H2Stream): boolean {
    const data = stream.pendingData;
    if (data && data.length > 0) {
      // A SETTINGS_INITIAL_WINDOW_SIZE decrease can leave a stream window negative (RFC 9113 §6.9.2).
      const room = Math.max(0, Math.min(stream.sendWindow, this.connSendWindow));
      const size = Math.min(room, data.length);
      if (size > 0) {
        this.writeData(stream.id, data.subarray(0, size));
        stream.sendWindow -= size;
        this.connSendWindow -= size;
      }
      stream.pendingData = size === data.length ? undefined : data.subarray(size);
      if (stream.pendingData) return false;
    }
    stream.pendingData = undefined;
    if (stream.pendingTrailers) {
      this.writeHeaders(stream.id, stream.pendingTrailers, true);
      stream.pendingTrailers = undefined;
    }
    this.answered(stream);
    return true;
  }

  /**
   * Sends what flow control allows of the stream's answer. One still waiting is queued in `blocked`
   * only when the connection window holds it: every visit there then sends bytes, so a flood of tiny
   * WINDOW_UPDATEs cannot make us walk streams that cannot move.
   */
  private pump(stream: H2Stream): void {
    if (!this.flushStream(stream) && stream.sendWindow > 0) this.blocked.add(stream);
    else this.blocked.delete(stream);
  }

  /** Sends what the connection window allows of the waiting answers, oldest first. */
  private flushBlocked(): void {
    for (const stream of this.blocked) {
      if (this.dead || this.connSendWindow <= 0) return;
      this.pump(stream);
    }
  }

  /** The answer is out: a client still sending is reset with NO_ERROR (RFC 9113 §8.1). */
  private answered(stream: H2Stream): void {
    if (!stream.remoteEnded) this.sendReset(stream.id, H2Error.NO_ERROR);
    this.closeStream(stream);
  }

  private closeStream(stream: H2Stream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    stream.localClosed = true;
    stream.parked = undefined;
    this.blocked.delete(stream);
    this.starved.delete(stream);
    this.unbuffer(stream);
    stream.closed();
    if (stream.settledCall) this.release(stream);
  }

  /** A stream-level error: RST_STREAM, and the stream's call (if any) is abandoned. */
  private resetStream(streamId: number, code: number, reason: string): void {
    this.observer.streamError(errorName(code), reason);
    this.sendReset(streamId, code);
    const stream = this.streams.get(streamId);
    if (stream) this.closeStream(stream);
  }

  /** An HTTP-level refusal before any call exists (431, 405, 415). */
  private refuse(streamId: number, endStream: boolean, status: number, reason: string): void {
    this.observer.streamError(String(status), reason);
    this.writeHeaders(streamId, encodeHeaderBlock([[':status', String(status)]]), true);
    if (!endStream) this.sendReset(streamId, H2Error.NO_ERROR);
  }

  /**
   * RST_STREAM, remembering the stream for a while: its client may have sent frames (trailers
   * included) before it saw the reset, and those must be ignored, not taken as errors (RFC 9113 §5.1).
   */
  private sendReset(streamId: number, code: number): void {
    this.write(rstStreamFrame(streamId, code));
    this.recentlyReset.add(streamId);
    if (this.recentlyReset.size > RECENT_RESETS) this.recentlyReset.delete(this.recentlyReset.values().next().value!);
  }

  private writeHeaders(streamId: number, block: Buffer, endStream: boolean): void {
    if (this.tableSizeUpdatePending) {
      // A dynamic table size update to 0 (we never use the table): valid whatever the client set.
      this.tableSizeUpdatePending = false;
      block = Buffer.concat([TABLE_SIZE_ZERO, block]);
    }
    this.write(headerFrames(streamId, block, endStream, this.peerMaxFrameSize));
  }

  private writeData(streamId: number, data: Buffer): void {
    for (let at = 0; at < data.length; at += this.peerMaxFrameSize) {
      const part = data.subarray(at, at + this.peerMaxFrameSize);
      const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
      writeFrameHeader(header, 0, part.length, FrameType.DATA, 0, streamId);
      this.write(header);
      this.write(part);
    }
  }

  private write(bytes: Buffer): void {
    if (this.dead) return;
    if (!this.corked) {
      // Frames written in one turn of the event loop leave in one write.
      this.corked = true;
      this.socket.cork();
      process.nextTick(uncork, this);
    }
    this.socket.write(bytes);
    if (!this.readPaused && this.socket.writableLength > OUTPUT_HIGH_WATER) {
      // A client that does not read (PING or SETTINGS floods included) stops being read.
      this.readPaused = true;
      this.socket.pause();
    }
  }

  uncork(): void {
    this.corked = false;
    if (!this.dead) this.socket.uncork();
  }

  private onDrain(): void {
    if (!this.readPaused || this.dead) return;
    this.readPaused = false;
    this.socket.resume();
  }

  // ---- flow control credit ----

  private creditConnection(length: number): void {
    this.connUncredited += length;
    if (this.connUncredited < CONNECTION_WINDOW / 2) return;
    this.write(windowUpdateFrame(0, this.connUncredited));
    this.connRecvWindow += this.connUncredited;
    this.connUncredited = 0;
  }

  private creditStream(stream: H2Stream, now: boolean): void {
    if (stream.remoteEnded || stream.uncredited === 0 || (!now && stream.uncredited < STREAM_CREDIT_BATCH)) return;
    if (this.bufferedRequestBytes > this.limits.maxBufferedRequestBytes && stream !== this.oldestReceiving()) {
      this.starved.add(stream);
      return;
    }
    this.write(windowUpdateFrame(stream.id, stream.uncredited));
    stream.recvWindow += stream.uncredited;
    stream.uncredited = 0;
  }

  // ---- lifecycle ----

  /** The stream `id` if open; undefined if closed; a connection error if never opened (idle). */
  private openStream(id: number): H2Stream | undefined {
    const stream = this.streams.get(id);
    if (stream) return stream;
    if (id > this.lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, `frame on idle stream ${id}`);
    return undefined;
  }

  /**
   * Resets streams stuck past H2Limits.streamTimeoutMs: a request that never ends, or an answer the
   * client's window never lets out. Stops once no stream is open.
   */
  private sweep(): void {
    if (this.dead || this.streams.size === 0) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
      return;
    }
    const expired = Date.now() - this.limits.streamTimeoutMs;
    for (const stream of [...this.streams.values()]) {
      if (stream.since > expired) continue;
      if (!stream.remoteEnded) this.resetStream(stream.id, H2Error.CANCEL, 'request not finished in time');
      else if (stream.pendingData || stream.pendingTrailers) this.resetStream(stream.id, H2Error.CANCEL, 'answer held by a closed window too long');
    }
  }

  private countEmpty(): void {
    if (++this.emptyFrames > MAX_EMPTY_FRAMES) throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, 'too many frames that carry nothing');
  }

  private endIfDone(): void {
    // Every call settled and every answer out (a call settles before its answer is written).
    if (!this.goingAway || this.inProgress > 0 || this.dead) return;
    this.dead = true;
    this.stopTimers();
    this.socket.end();
    // A peer that keeps its side open is cut off once our last bytes are out (or could not be).
    const cut = () => setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
    if (this.socket.writableFinished) cut();
    else this.socket.once('finish', cut);
    setTimeout(() => this.socket.destroy(), MAX_DRAIN_MS).unref();
  }

  private stopTimers(): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.prefaceTimer);
    clearTimeout(this.shutdownTimer);
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** The connection is gone: every open stream's call is told, nothing more is sent. */
  private abandonStreams(): void {
    for (const stream of this.streams.values()) stream.closed();
    this.streams.clear();
    this.blocked.clear();
    this.starved.clear();
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    if (this.dead) return;
    this.idleTimer = setTimeout(() => this.shutdown(), this.limits.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private fail(err: unknown): void {
    if (this.dead) return;
    const code = err instanceof ConnectionError ? err.code : H2Error.INTERNAL_ERROR;
    const reason = err instanceof Error ? err.message : String(err);
    this.observer.connectionError(errorName(code), reason);
    this.write(goawayFrame(this.lastStreamId, code, reason));
    this.uncork();
    this.abandonStreams();
    this.dead = true;
    this.stopTimers();
    this.socket.end();
    // A peer that does not close its side is cut off.
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }
}

function uncork(connection: H2Connection): void {
  connection.uncork();
}

/** The payload without its Pad Length byte and padding; `skip` bytes of priority follow Pad Length. */
function unpad(payload: Buffer, skip: number): Buffer {
  if (payload.length < 1) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'padded frame without a Pad Length');
  const pad = payload[0]!;
  if (pad + 1 + skip > payload.length) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'padding longer than the frame');
  return payload.subarray(1 + skip, payload.length - pad);
}

function headerBlockOf(headers: Record<string, string | number>): Buffer {
  return encodeHeaderBlock(Object.entries(headers).map(([k, v]) => [k, String(v)] as const));
}

/** A trailers-only answer's header block: the response headers and the status trailers in one. */
function trailersOnlyBlock(trailers: Record<string, string>): Buffer {
  return headerBlockOf({ ...RESPONSE_HEADERS, ...trailers });
}
