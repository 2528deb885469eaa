/**
 * Completes, on the writer thread, the records whose input came as bytes (record.ts InputBytes):
 * rebuilds the input with the producer's decoder, masks it with the same masker the event loop
 * would have used, and splices it into the body. Masking and serializing the input was the
 * largest part of audit's cost on the event loop (≈ 10 % of it at 2,000 checks/s); copying the
 * request's bytes costs a memcpy.
 */
import type { BatchInputContext, WireRecord } from './batch-codec.ts';
import type { Masker, MaskerCache } from './mask.ts';
import type { DecisionRecordV1 } from './record.ts';

export type InputDecoder = (bytes: Uint8Array) => unknown;

const decoders = new Map<string, Promise<InputDecoder>>();

/** The `decodeAuditInput` export of the module at `url`, imported once. */
export function loadInputDecoder(url: string): Promise<InputDecoder> {
  let decoder = decoders.get(url);
  if (!decoder) {
    decoder = import(url).then((mod: { decodeAuditInput?: unknown }) => {
      if (typeof mod.decodeAuditInput !== 'function') throw new Error(`${url} does not export decodeAuditInput`);
      return mod.decodeAuditInput as InputDecoder;
    });
    decoders.set(url, decoder);
  }
  return decoder;
}

/**
 * The full body: `bodyWithoutInput` (a record's JSON without `input` and without `masked`) plus
 * the masked input and the sorted list of what masking changed, exactly what the event loop's
 * `maskAndSerialize` + `prepareRecord` produce for the whole record, up to key order.
 */
export function completeBody(bodyWithoutInput: string, input: unknown, masker: Masker): string {
  // The rest of the record counts against the size cap too.
  const { masked, json } = masker.maskAndSerialize({ input } as DecisionRecordV1, bodyWithoutInput.length);
  const parts: string[] = [];
  const head = bodyWithoutInput.slice(1, -1);
  if (head) parts.push(head);
  const inputMember = json.slice(1, -1);
  if (inputMember) parts.push(inputMember);
  if (masked.length > 0) parts.push(`"masked":${JSON.stringify(masked)}`);
  return `{${parts.join(',')}}`;
}

/** Completes every record of a batch that carries input bytes, in place. */
export async function completeRecords(records: WireRecord[], context: BatchInputContext, maskers: MaskerCache): Promise<void> {
  // A decoder that cannot load would fail every retry of this batch: record without the input instead.
  const decode = await loadInputDecoder(context.decoder).catch((err: Error): InputDecoder => () => { throw new Error(`input decoder unavailable: ${err.message}`); });
  const masker = maskers.get(context.maskPaths);
  const bodies = new BodyBytes(records.length);
  for (const record of records) {
    if (!record.input) continue;
    const head = Buffer.from(record.body.buffer, record.body.byteOffset, record.body.byteLength).toString('utf8');
    let body: string;
    try {
      body = completeBody(head, decode(record.input), masker);
    } catch (err) {
      // The event loop decoded these very bytes, so this is a bug; the decision is still recorded.
      body = `${head.slice(0, -1)},"inputError":${JSON.stringify((err as Error).message)}}`;
    }
    record.body = bodies.encode(body);
    delete record.input;
  }
}

/** Bytes per chunk the bodies of a batch are encoded into: at most this, about 4 KiB per record for a small batch. */
const BODY_CHUNK_BYTES = 256 * 1024;
const BODY_BYTES_PER_RECORD = 4096;

/**
 * A batch's completed bodies as UTF-8, back to back in a few large chunks (views stay valid: a
 * full chunk is left to the records viewing it). Buffer.from per body took a slice of Node's 8 KiB
 * pool, a new pool every five records: ≈ 7 % of the writer thread in the CPU profile.
 */
class BodyBytes {
  readonly #chunkBytes: number;
  #chunk = Buffer.alloc(0);
  #used = 0;

  constructor(records: number) {
    this.#chunkBytes = Math.min(BODY_CHUNK_BYTES, records * BODY_BYTES_PER_RECORD);
  }

  encode(body: string): Buffer {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const room = body.length * 3;
    if (this.#used + room > this.#chunk.length) {
      this.#chunk = Buffer.allocUnsafeSlow(Math.max(this.#chunkBytes, room));
      this.#used = 0;
    }
    const start = this.#used;
    this.#used += this.#chunk.write(body, start, 'utf8');
    return this.#chunk.subarray(start, this.#used);
  }
}
