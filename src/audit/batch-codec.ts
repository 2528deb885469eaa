/**
 * Packs prepared records for the SQLite writer thread (pure). Each record is encoded the moment it
 * is prepared, as UTF-8 bytes in an off-heap buffer: a backlog of queued records then costs the
 * V8 heap nothing. Held as JS strings and objects, queued records survived young-generation
 * collections, were promoted, and a burst of 30,000 decisions left a 48 ms mark-compact for
 * later (measured at 2,000 checks/s after such a burst: p99.9 56–76 ms).
 *
 * Per record the buffer holds the nine column texts joined by NUL (a column text never contains
 * NUL: row.ts replaces it), then the body, then (for a record whose input comes as bytes, see
 * InputBytes) those bytes. A Float64Array indexes them: time, status, a bit mask of null
 * columns, the columns' byte length, the body's byte length, the input's byte length (-1: the
 * body is complete). The writer binds each complete body straight from the bytes it stores and
 * hashes the same bytes, so no JS string is built for it.
 */
import { sameMaskPaths } from './mask.ts';
import type { DecisionOutcome } from './record.ts';
import type { PreparedRecord } from './row.ts';

/** A prepared record as the writer thread sees it: the body is its UTF-8 bytes. */
export interface WireRecord extends Omit<PreparedRecord, 'body'> {
  body: Uint8Array;
  /** The input's source bytes, when the body still lacks `input` (see EncodedBatch.input). */
  input?: Uint8Array;
}

/** How the writer completes records that came with input bytes: one decoder and mask list per batch. */
export interface BatchInputContext {
  decoder: string;
  maskPaths: readonly string[];
}

/** What crosses to the writer thread; both buffers are transferred. */
export interface EncodedBatch {
  /** Columns and bodies, UTF-8, back to back. */
  data: ArrayBuffer;
  /** SLOTS numbers per record (see the module comment). */
  index: Float64Array;
  /** Present when some record carries input bytes. */
  input?: BatchInputContext;
}

const COLUMN_FIELDS = ['decisionId', 'decision', 'sourcePrincipal', 'requestPrincipal', 'destination', 'method', 'path', 'configVersion', 'policies'] as const;
const SLOTS = 6;
/** A small batch's worth; an encoder grows as needed and keeps its size when reused. */
const INITIAL_BYTES = 64 * 1024;
/** New encoders start at the largest batch finished so far (up to this), not at INITIAL_BYTES. */
const MAX_BATCH_BYTES_HINT = 8 * 1024 * 1024;
let batchBytesHint = INITIAL_BYTES;

/**
 * Builds one batch record by record; `finish` copies out exactly the bytes used. Reuse an encoder
 * (`reset`) rather than making one per batch: a fresh off-heap buffer per batch, 100 batches a
 * second, counted as external memory and drove V8 into a mark-compact every few hundred ms.
 */
export class BatchEncoder {
  #bytes: Buffer;
  #offset = 0;
  #index: Float64Array;
  #slot = 0;
  #input?: BatchInputContext;
  /** Scratch for one record's column texts. */
  readonly #texts: string[] = new Array<string>(COLUMN_FIELDS.length).fill('');

  constructor(expectedRecords = 500) {
    // As large as the largest batch seen so far: growing by doubling from 64 KiB to a full batch
    // (≈ 750 KB) allocated and copied ≈ 2 MB of external memory per batch whenever the pool was
    // empty (a backlog of batches), ≈ 4 % of the event loop and more mark-compacts.
    this.#bytes = Buffer.allocUnsafeSlow(batchBytesHint);
    this.#index = new Float64Array(expectedRecords * SLOTS);
  }

  get size(): number {
    return this.#slot / SLOTS;
  }

  /** Empties the encoder, keeping its buffers for the next batch. */
  reset(): void {
    this.#offset = 0;
    this.#slot = 0;
    this.#input = undefined;
  }

  /**
   * Adds a record whose body lacks `input`, with the bytes the writer rebuilds it from. False
   * (nothing added) when the batch already holds input bytes for another decoder or mask list.
   */
  addWithInputBytes(r: PreparedRecord, bytes: Uint8Array, context: BatchInputContext): boolean {
    if (this.#input && (this.#input.decoder !== context.decoder || !sameMaskPaths(this.#input.maskPaths, context.maskPaths))) return false;
    this.#input ??= context;
    this.add(r, bytes);
    return true;
  }

  add(r: PreparedRecord, inputBytes?: Uint8Array): void {
    let nulls = 0;
    // One join, not eight concatenations (each a string the write then flattens).
    const texts = this.#texts;
    for (let i = 0; i < COLUMN_FIELDS.length; i++) {
      const v = r[COLUMN_FIELDS[i]!];
      if (v === null) nulls |= 1 << i;
      texts[i] = v ?? '';
    }
    const columns = texts.join('\0');
    // UTF-8 takes at most 3 bytes per UTF-16 unit; only near the end of the buffer is the exact size worth computing.
    const inputLength = inputBytes?.length ?? 0;
    if (this.#offset + (columns.length + r.body.length) * 3 + inputLength > this.#bytes.length) {
      this.#reserve(Buffer.byteLength(columns, 'utf8') + Buffer.byteLength(r.body, 'utf8') + inputLength);
    }
    if (this.#slot + SLOTS > this.#index.length) this.#index = grow(this.#index, this.#index.length * 2);
    const columnBytes = this.#bytes.write(columns, this.#offset, 'utf8');
    this.#offset += columnBytes;
    const bodyBytes = this.#bytes.write(r.body, this.#offset, 'utf8');
    this.#offset += bodyBytes;
    if (inputBytes) {
      this.#bytes.set(inputBytes, this.#offset);
      this.#offset += inputBytes.length;
    }
    const index = this.#index;
    index[this.#slot++] = r.time;
    index[this.#slot++] = r.status;
    index[this.#slot++] = nulls;
    index[this.#slot++] = columnBytes;
    index[this.#slot++] = bodyBytes;
    index[this.#slot++] = inputBytes ? inputBytes.length : -1;
  }

  /** The batch as sent (copies: the encoder keeps its buffers, so a failed write can be re-sent). */
  finish(): EncodedBatch {
    if (this.#offset > batchBytesHint) batchBytesHint = Math.min(this.#offset, MAX_BATCH_BYTES_HINT);
    // The Buffer may be a view at an offset (allocUnsafeSlow does not pool, but be exact).
    const data = this.#bytes.buffer.slice(this.#bytes.byteOffset, this.#bytes.byteOffset + this.#offset) as ArrayBuffer;
    return { data, index: this.#index.slice(0, this.#slot), ...(this.#input ? { input: this.#input } : {}) };
  }

  #reserve(bytes: number): void {
    if (this.#offset + bytes <= this.#bytes.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.#bytes.length * 2, this.#offset + bytes));
    this.#bytes.copy(next, 0, 0, this.#offset);
    this.#bytes = next;
  }
}

function grow(index: Float64Array, length: number): Float64Array {
  const next = new Float64Array(length);
  next.set(index);
  return next;
}

export function encodeBatch(records: readonly PreparedRecord[]): EncodedBatch {
  const encoder = new BatchEncoder(records.length);
  for (const r of records) encoder.add(r);
  return encoder.finish();
}

export function decodeBatch(batch: EncodedBatch): WireRecord[] {
  const bytes = Buffer.from(batch.data);
  const { index } = batch;
  const out: WireRecord[] = [];
  let offset = 0;
  for (let slot = 0; slot < index.length; slot += SLOTS) {
    const nulls = index[slot + 2]!;
    const columnBytes = index[slot + 3]!;
    const bodyBytes = index[slot + 4]!;
    const inputBytes = index[slot + 5]!;
    const c = bytes.toString('utf8', offset, offset + columnBytes).split('\0');
    offset += columnBytes;
    const record: WireRecord = {
      time: index[slot]!,
      status: index[slot + 1]!,
      decisionId: c[0]!,
      decision: c[1] as DecisionOutcome,
      sourcePrincipal: nullable(c, nulls, 2),
      requestPrincipal: nullable(c, nulls, 3),
      destination: nullable(c, nulls, 4),
      method: nullable(c, nulls, 5),
      path: nullable(c, nulls, 6),
      configVersion: c[7]!,
      policies: c[8]!,
      body: bytes.subarray(offset, offset + bodyBytes),
    };
    offset += bodyBytes;
    if (inputBytes >= 0) {
      record.input = bytes.subarray(offset, offset + inputBytes);
      offset += inputBytes;
    }
    out.push(record);
  }
  return out;
}


function nullable(columns: readonly string[], nulls: number, i: number): string | null {
  return (nulls & (1 << i)) !== 0 ? null : columns[i]!;
}
