/**
 * Discovery responses written straight to protobuf wire format from the already-encoded resources.
 * Resource bytes are encoded once per configuration version and shared by every proxy; the framing
 * around them (the Any and Delta Resource headers) is computed once per resource too, so a response
 * is one allocation and a copy of shared bytes. Field numbers are those of
 * envoy/service/discovery/v3/discovery.proto and google/protobuf/any.proto; the tests decode every
 * response with the official protos, and check the bytes equal protobufjs' encoding.
 */
import type { EncodedResource } from './resources.ts';

/** Length-delimited field tag. */
const tag = (field: number) => (field << 3) | 2;

function varint(n: number): number[] {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  bytes.push(n);
  return bytes;
}

/** Tag and length of a length-delimited field. */
function head(field: number, length: number): number[] {
  return [tag(field), ...varint(length)];
}

function stringField(field: number, value: string): Buffer {
  if (value === '') return Buffer.alloc(0);
  const bytes = Buffer.from(value);
  return Buffer.concat([Buffer.from(head(field, bytes.length)), bytes]);
}

/** The bytes of google.protobuf.Any { type_url = 1; value = 2; } that precede `value`. */
function anyPrefix(r: EncodedResource): { prefix: number[]; length: number } {
  const url = Buffer.from(r.any.type_url);
  const prefix = [...head(1, url.length), ...url, ...head(2, r.any.value.length)];
  return { prefix, length: prefix.length + r.any.value.length };
}

interface Framing {
  /** Everything before the resource bytes. */
  before: Buffer;
  /** Everything after them (the Delta Resource's name). */
  after: Buffer;
}

const sotwFraming = new WeakMap<EncodedResource, Framing>();
const deltaFraming = new WeakMap<EncodedResource, Framing>();

/** DiscoveryResponse.resources (field 2) entry: an Any. */
function sotwEntry(r: EncodedResource): Framing {
  let f = sotwFraming.get(r);
  if (!f) {
    const any = anyPrefix(r);
    f = { before: Buffer.from([...head(2, any.length), ...any.prefix]), after: Buffer.alloc(0) };
    sotwFraming.set(r, f);
  }
  return f;
}

/** DeltaDiscoveryResponse.resources (field 2) entry: Resource { version = 1; resource = 2; name = 3; }. */
function deltaEntry(r: EncodedResource): Framing {
  let f = deltaFraming.get(r);
  if (!f) {
    const any = anyPrefix(r);
    const version = stringField(1, r.version);
    const name = stringField(3, r.name);
    const resourceHead = head(2, any.length);
    const length = version.length + resourceHead.length + any.length + name.length;
    f = { before: Buffer.concat([Buffer.from(head(2, length)), version, Buffer.from([...resourceHead, ...any.prefix])]), after: name };
    deltaFraming.set(r, f);
  }
  return f;
}

function assemble(start: Buffer[], entries: readonly EncodedResource[], framing: (r: EncodedResource) => Framing, end: Buffer[]): Buffer {
  let length = 0;
  for (const b of start) length += b.length;
  for (const b of end) length += b.length;
  const frames = entries.map((r) => {
    const f = framing(r);
    length += f.before.length + r.any.value.length + f.after.length;
    return f;
  });
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (const b of start) at += b.copy(out, at);
  frames.forEach((f, i) => {
    at += f.before.copy(out, at);
    at += entries[i]!.any.value.copy(out, at);
    at += f.after.copy(out, at);
  });
  for (const b of end) at += b.copy(out, at);
  return out;
}

/** DiscoveryResponse { version_info = 1; resources = 2; type_url = 4; nonce = 5; } */
export function encodeDiscoveryResponse(r: { versionInfo: string; resources: readonly EncodedResource[]; typeUrl: string; nonce: string }): Buffer {
  return assemble([stringField(1, r.versionInfo)], r.resources, sotwEntry, [stringField(4, r.typeUrl), stringField(5, r.nonce)]);
}

/** DeltaDiscoveryResponse { system_version_info = 1; resources = 2; type_url = 4; nonce = 5; removed_resources = 6; } */
export function encodeDeltaDiscoveryResponse(r: { systemVersionInfo: string; resources: readonly EncodedResource[]; typeUrl: string; nonce: string; removed: readonly string[] }): Buffer {
  return assemble([stringField(1, r.systemVersionInfo)], r.resources, deltaEntry, [stringField(4, r.typeUrl), stringField(5, r.nonce), ...r.removed.map((n) => stringField(6, n))]);
}
