/**
 * Packs a batch of prepared records for the writer thread (pure). All text goes, UTF-8 encoded,
 * into one ArrayBuffer that is transferred (not copied); a Float64Array indexes it. The writer
 * binds each body straight from that memory as the stored bytes and hashes the same bytes, so no
 * JS string is built for it on the writer side. Structured-cloning 500 objects, or one big string
 * that the writer then slices, cost several µs per record, mostly in the garbage collector.
 */
import type { DecisionOutcome } from './record.ts';
import type { PreparedRecord } from './row.ts';

/** A prepared record as the writer thread sees it: the body is its UTF-8 bytes. */
export interface WireRecord extends Omit<PreparedRecord, 'body'> {
  body: Uint8Array;
}

export interface EncodedBatch {
  data: ArrayBuffer;
  /** Per record: time, status, then the byte length of each text field (-1 for null). */
  index: Float64Array;
}

const TEXT_FIELDS = ['decisionId', 'decision', 'sourcePrincipal', 'requestPrincipal', 'destination', 'method', 'path', 'configVersion', 'policies', 'body'] as const;
const SLOTS = 2 + TEXT_FIELDS.length;

export function encodeBatch(records: readonly PreparedRecord[]): EncodedBatch {
  let bound = 0;
  for (const r of records) for (const f of TEXT_FIELDS) bound += (r[f]?.length ?? 0) * 3;
  const data = new ArrayBuffer(bound);
  const bytes = Buffer.from(data);
  const index = new Float64Array(records.length * SLOTS);
  let offset = 0;
  let slot = 0;
  for (const r of records) {
    index[slot++] = r.time;
    index[slot++] = r.status;
    for (const f of TEXT_FIELDS) {
      const v = r[f];
      if (v === null) {
        index[slot++] = -1;
        continue;
      }
      const written = bytes.write(v, offset, 'utf8');
      index[slot++] = written;
      offset += written;
    }
  }
  return { data, index };
}

export function decodeBatch(batch: EncodedBatch): WireRecord[] {
  const bytes = Buffer.from(batch.data);
  const { index } = batch;
  const out: WireRecord[] = [];
  let offset = 0;
  let slot = 0;
  const bytesOf = (): Buffer | null => {
    const n = index[slot++]!;
    if (n < 0) return null;
    const b = bytes.subarray(offset, offset + n);
    offset += n;
    return b;
  };
  const text = () => bytesOf()?.toString('utf8') ?? null;
  while (slot < index.length) {
    const time = index[slot++]!;
    const status = index[slot++]!;
    out.push({
      time,
      status,
      decisionId: text() ?? '',
      decision: (text() ?? '') as DecisionOutcome,
      sourcePrincipal: text(),
      requestPrincipal: text(),
      destination: text(),
      method: text(),
      path: text(),
      configVersion: text() ?? '',
      policies: text() ?? '',
      body: bytesOf() ?? Buffer.alloc(0),
    });
  }
  return out;
}
