/**
 * A raw HTTP/2 client for tests of src/lib/h2: writes whatever bytes and frames a test asks for
 * (valid or not), parses what the server sends, and decodes the server's header blocks.
 */
import { connect, type Socket } from 'node:net';
import { Flag, FRAME_HEADER_SIZE, FrameType, frame, PREFACE, settingsFrame } from '../../../src/lib/h2/frames.ts';
import { encodeHeaderBlock, HpackDecoder } from '../../../src/lib/h2/hpack.ts';
import type { UnaryMethod, UnaryRoute } from '../../../src/lib/grpc-unary-stream.ts';

export { Flag, FrameType } from '../../../src/lib/h2/frames.ts';

export interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** HEADERS only: the decoded header block (CONTINUATIONs joined), on the HEADERS frame. */
  headers?: Record<string, string>;
}

export interface Goaway {
  lastStreamId: number;
  code: number;
  debug: string;
}

/** What the server sent on one stream, once it ended it (END_STREAM or RST_STREAM). */
export interface Answer {
  headers: Record<string, string> | undefined;
  trailers: Record<string, string> | undefined;
  data: Buffer;
  rstCode: number | undefined;
}

export interface RawClientOptions {
  host?: string;
  /** Keep our side open when the server ends its side (a client that never closes). */
  halfOpen?: boolean;
}

type Waiter = { predicate: (f: RawFrame) => boolean; resolve: (f: RawFrame) => void };

export class RawClient {
  readonly frames: RawFrame[] = [];
  /** Resolves when the socket is closed (by the server, or an error). */
  readonly closed: Promise<void>;
  isClosed = false;
  private input: Buffer = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder({ maxHeaderListSize: 1 << 24 });
  private block: { head: RawFrame; parts: Buffer[] } | undefined;
  private waiters = new Set<Waiter>();
  private closeListeners = new Set<() => void>();
  private pingCounter = 0;
  /** Streams the server ended (END_STREAM after complete headers, or RST_STREAM). */
  private readonly ended = new Set<number>();

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.isClosed = true;
        for (const listener of this.closeListeners) listener();
        resolve();
      });
    });
  }

  static connect(port: number, options: RawClientOptions = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: options.host ?? '127.0.0.1', port, allowHalfOpen: options.halfOpen ?? false });
      socket.setNoDelay(true);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new RawClient(socket));
      });
    });
  }

  /** Connects and sends the preface and an empty (or given) SETTINGS. */
  static async open(port: number, settings: ReadonlyArray<readonly [number, number]> = [], options: RawClientOptions = {}): Promise<RawClient> {
    const client = await RawClient.connect(port, options);
    client.preface(settings);
    return client;
  }

  // ---- sending ----

  send(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  preface(settings: ReadonlyArray<readonly [number, number]> = []): void {
    this.send(Buffer.concat([PREFACE, settingsFrame(settings)]));
  }

  frame(type: number, flags: number, streamId: number, payload?: Buffer): void {
    this.send(rawFrame(type, flags, streamId, payload));
  }

  /** HEADERS with END_HEADERS (unless `endHeaders: false`), the block encoded from fields or given raw. */
  headers(streamId: number, block: Buffer | ReadonlyArray<readonly [string, string]>, options: { endStream?: boolean; endHeaders?: boolean; flags?: number } = {}): void {
    const bytes = Buffer.isBuffer(block) ? block : encodeHeaderBlock(block);
    const flags = (options.endHeaders === false ? 0 : Flag.END_HEADERS) | (options.endStream ? Flag.END_STREAM : 0) | (options.flags ?? 0);
    this.frame(FrameType.HEADERS, flags, streamId, bytes);
  }

  data(streamId: number, data: Buffer, endStream = false): void {
    this.frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, data);
  }

  /** DATA split into frames of at most 16,384 bytes, END_STREAM on the last one when asked. */
  dataChunked(streamId: number, data: Buffer, endStream = false): void {
    const parts: Buffer[] = [];
    for (let at = 0; at < data.length; at += 16_384) {
      const last = at + 16_384 >= data.length;
      parts.push(rawFrame(FrameType.DATA, last && endStream ? Flag.END_STREAM : 0, streamId, data.subarray(at, at + 16_384)));
    }
    if (data.length === 0) parts.push(rawFrame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId));
    this.send(Buffer.concat(parts));
  }

  rst(streamId: number, code: number): void {
    this.frame(FrameType.RST_STREAM, 0, streamId, u32(code));
  }

  windowUpdate(streamId: number, increment: number): void {
    this.frame(FrameType.WINDOW_UPDATE, 0, streamId, u32(increment));
  }

  /** A unary gRPC call: HEADERS, then the length-prefixed message with END_STREAM. */
  call(streamId: number, path: string, message: Buffer, extra: ReadonlyArray<readonly [string, string]> = []): void {
    this.headers(streamId, requestFields(path, extra));
    this.dataChunked(streamId, grpcMessage(message), true);
  }

  /** Resolves once the server has processed everything sent before (a PING round trip). */
  async barrier(timeoutMs = 5000): Promise<void> {
    const opaque = Buffer.alloc(8);
    opaque.writeUInt32BE(0xb0a1, 0);
    opaque.writeUInt32BE(++this.pingCounter, 4);
    this.frame(FrameType.PING, 0, 0, opaque);
    await this.waitFor((f) => f.type === FrameType.PING && (f.flags & Flag.ACK) !== 0 && f.payload.equals(opaque), timeoutMs);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.destroy();
  }

  // ---- receiving ----

  /** The first received frame (already or later) that matches; rejects on timeout or close. */
  waitFor(predicate: (f: RawFrame) => boolean, timeoutMs = 5000): Promise<RawFrame> {
    const found = this.frames.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        cleanup();
        reject(new Error(`${why}; received: ${this.describe()}`));
      };
      const onClose = () => fail('the connection closed before a matching frame');
      const timer = setTimeout(() => fail(`no matching frame within ${timeoutMs} ms`), timeoutMs);
      const waiter: Waiter = {
        predicate,
        resolve: (f) => {
          cleanup();
          resolve(f);
        },
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        this.closeListeners.delete(onClose);
      };
      this.waiters.add(waiter);
      if (this.isClosed) onClose();
      else this.closeListeners.add(onClose);
    });
  }

  /** The server's GOAWAY, decoded. */
  async goaway(timeoutMs = 5000): Promise<Goaway> {
    return decodeGoaway(await this.waitFor((f) => f.type === FrameType.GOAWAY, timeoutMs));
  }

  /** The code of the server's RST_STREAM on `streamId`. */
  async rstCode(streamId: number, timeoutMs = 5000): Promise<number> {
    const f = await this.waitFor((x) => x.type === FrameType.RST_STREAM && x.streamId === streamId, timeoutMs);
    return f.payload.readUInt32BE(0);
  }

  /** Everything the server sent on `streamId` up to END_STREAM or RST_STREAM. */
  async answer(streamId: number, timeoutMs = 5000): Promise<Answer> {
    await this.waitFor(() => this.ended.has(streamId), timeoutMs);
    const frames = this.frames.filter((f) => f.streamId === streamId);
    const headerFrames = frames.filter((f) => f.headers !== undefined);
    const rst = frames.find((f) => f.type === FrameType.RST_STREAM);
    return {
      headers: headerFrames[0]?.headers,
      trailers: headerFrames.length > 1 ? headerFrames[headerFrames.length - 1]!.headers : undefined,
      data: Buffer.concat(frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload)),
      rstCode: rst?.payload.readUInt32BE(0),
    };
  }

  describe(): string {
    const names = Object.fromEntries(Object.entries(FrameType).map(([k, v]) => [v, k]));
    const shown = this.frames.slice(-20).map((f) => {
      const extra = f.type === FrameType.GOAWAY ? ` ${JSON.stringify(decodeGoaway(f))}` : f.type === FrameType.RST_STREAM ? ` code=${f.payload.readUInt32BE(0)}` : f.headers ? ` ${JSON.stringify(f.headers)}` : '';
      return `${names[f.type] ?? f.type}(stream ${f.streamId}, flags ${f.flags}${extra})`;
    });
    return `${this.frames.length} frames${this.frames.length > 20 ? ', last 20' : ''}: ${shown.join(', ') || 'none'}${this.isClosed ? ', closed' : ''}`;
  }

  private onData(chunk: Buffer): void {
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    let at = 0;
    while (this.input.length - at >= FRAME_HEADER_SIZE) {
      const length = this.input.readUIntBE(at, 3);
      if (this.input.length - at < FRAME_HEADER_SIZE + length) break;
      const f: RawFrame = {
        type: this.input[at + 3]!,
        flags: this.input[at + 4]!,
        streamId: this.input.readUInt32BE(at + 5) & 0x7fffffff,
        payload: Buffer.from(this.input.subarray(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + length)),
      };
      at += FRAME_HEADER_SIZE + length;
      this.onFrame(f);
    }
    this.input = this.input.subarray(at);
  }

  private onFrame(f: RawFrame): void {
    if (f.type === FrameType.HEADERS) {
      let fragment = f.payload;
      if (f.flags & Flag.PADDED) fragment = fragment.subarray(1, fragment.length - fragment[0]!);
      if (f.flags & Flag.PRIORITY) fragment = fragment.subarray(5);
      this.block = { head: f, parts: [fragment] };
    } else if (f.type === FrameType.CONTINUATION && this.block) {
      this.block.parts.push(f.payload);
    }
    if (this.block && (f.type === FrameType.HEADERS || f.type === FrameType.CONTINUATION) && f.flags & Flag.END_HEADERS) {
      const { head, parts } = this.block;
      this.block = undefined;
      head.headers = { ...this.decoder.decode(Buffer.concat(parts)).headers };
      if (head.flags & Flag.END_STREAM) this.ended.add(head.streamId);
    }
    if (f.type === FrameType.RST_STREAM || (f.type === FrameType.DATA && f.flags & Flag.END_STREAM)) this.ended.add(f.streamId);
    this.frames.push(f);
    for (const waiter of this.waiters) if (waiter.predicate(f)) waiter.resolve(f);
  }
}

export function rawFrame(type: number, flags: number, streamId: number, payload?: Buffer): Buffer {
  return frame(type, flags, streamId, payload);
}

export function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0, 0);
  return out;
}

export function decodeGoaway(f: RawFrame): Goaway {
  return { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4), debug: f.payload.subarray(8).toString('utf8') };
}

/** A gRPC request's header fields (POST, http, `path`, application/grpc, te: trailers) and `extra`. */
export function requestFields(path: string, extra: ReadonlyArray<readonly [string, string]> = []): Array<readonly [string, string]> {
  return [[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', 'localhost'], ['content-type', 'application/grpc'], ['te', 'trailers'], ...extra];
}

/** A length-prefixed, uncompressed gRPC message. */
export function grpcMessage(message: Buffer): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** HPACK "literal with incremental indexing, new name" (RFC 7541 §6.2.1), raw strings under 127 bytes of name. */
export function literalIndexed(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  const length: number[] = [];
  if (bytes.length < 127) {
    length.push(bytes.length);
  } else {
    length.push(127);
    let rest = bytes.length - 127;
    for (; rest >= 128; rest = Math.floor(rest / 128)) length.push((rest % 128) | 0x80);
    length.push(rest);
  }
  return Buffer.concat([Buffer.from(length), bytes]);
}

/** A unary route over Buffers (identity serialization) whose handler is `handle`. */
export function bufferRoute(
  handle: (message: Buffer, headers: Record<string, string | string[] | undefined>) => Buffer | Promise<Buffer>,
  options: { admission?: () => Promise<void> | undefined } = {},
): UnaryRoute {
  const method: UnaryMethod<Buffer, Buffer> = {
    deserialize: (b) => b,
    serialize: (b) => b,
    handle: (_request, message, headers) => handle(message, headers),
    failure: (err) => {
      const e = err as { code?: number; message?: string };
      return { code: typeof e.code === 'number' ? e.code : 2, message: e.message ?? String(err) };
    },
  };
  return options.admission ? { method, admission: options.admission } : { method };
}

/** A promise and its resolver (for admission gates and handlers the test releases). */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
