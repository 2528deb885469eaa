/**
 * Protobuf codec of the Istio CA messages (proto/istio/ca.proto), by hand: the request has two
 * fields meshward reads (csr = 1, validity_duration = 3); the rest (metadata = 4, unknown fields)
 * is skipped by wire type. A test proves it equal to proto-loader's on the same bytes.
 */
import { derToPem } from './der.ts';

export interface IstioCertificateRequest {
  csr?: string;
  validity_duration?: string | number;
}

export interface IstioCertificateResponse {
  cert_chain: string[];
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Error('varint longer than 10 bytes');
  }

  bytes(): Buffer {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new Error('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.advance(8);
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.advance(4);
    else throw new Error(`unsupported wire type ${wireType}`);
  }

  private advance(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error('truncated fixed-width field');
    this.pos += n;
  }
}

/**
 * int64 validity_duration as a number. A negative value (a 10-byte two's-complement varint) comes
 * out huge, which the issuer clamps to the maximum TTL, as it does proto-loader's "-5" (≤ 0 → default).
 */
export function decodeIstioRequest(message: Buffer): IstioCertificateRequest {
  const r = new Reader(message);
  const out: IstioCertificateRequest = {};
  while (r.pos < message.length) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    if (field === 1 && wireType === 2) out.csr = r.bytes().toString('utf8');
    else if (field === 3 && wireType === 0) out.validity_duration = r.varint();
    else r.skip(wireType);
  }
  return out;
}

function varintLength(n: number): number {
  let length = 1;
  for (; n > 0x7f; n >>>= 7) length++;
  return length;
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n > 0x7f) {
    out[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[at++] = n;
  return at;
}

/** `cert_chain` fields (field 1, length-delimited), in order. */
export function encodeIstioResponse(response: IstioCertificateResponse): Buffer {
  const bodies = response.cert_chain.map((pem) => Buffer.from(pem, 'utf8'));
  let length = 0;
  for (const body of bodies) length += 1 + varintLength(body.length) + body.length;
  const out = Buffer.allocUnsafe(length);
  let p = 0;
  for (const body of bodies) {
    out[p++] = 0x0a;
    p = writeVarint(out, p, body.length);
    p += body.copy(out, p);
  }
  return out;
}

/**
 * The whole gRPC message frame (5-byte prefix, then the response) whose `cert_chain` is the leaf
 * `leafDer` as PEM followed by `rest` (already encoded `cert_chain` fields, the CA's: the same for
 * every leaf it signs). One allocation; the bytes equal `encodeIstioResponse` of the PEM strings.
 */
export function encodeIstioLeafFrame(leafDer: Buffer, rest: Buffer): Buffer {
  // PEM is ASCII: its string length is its byte length, written straight into the frame.
  const pem = derToPem(leafDer, 'CERTIFICATE');
  const length = 1 + varintLength(pem.length) + pem.length + rest.length;
  const frame = Buffer.allocUnsafe(5 + length);
  frame[0] = 0;
  frame.writeUInt32BE(length, 1);
  frame[5] = 0x0a;
  const at = writeVarint(frame, 6, pem.length);
  const end = at + frame.write(pem, at, 'latin1');
  rest.copy(frame, end);
  return frame;
}
