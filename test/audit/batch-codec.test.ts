import { describe, expect, it } from 'vitest';
import { BatchEncoder, decodeBatch, encodeBatch } from '../../src/audit/batch-codec.ts';
import { chainHash } from '../../src/audit/chain.ts';
import { prepareRecord } from '../../src/audit/row.ts';
import { decision } from './fixtures.ts';

describe('writer-thread batch codec', () => {
  const records = [
    prepareRecord(decision({ path: '/a:b/12:3', reason: 'ünïcödé 🚦' }), ['/input/x']),
    prepareRecord(decision({ sourcePrincipal: undefined, requestPrincipal: undefined, method: '', matchedPolicies: [] }), []),
    prepareRecord(decision({ destination: 'ß-:', path: '' }), []),
    prepareRecord(decision({ path: '/🚦/ü?q=\ud800', sourcePrincipal: 'spiffe://ex/ns/ä', decisionId: 'ü-1' }), []),
  ];

  it('round-trips records with nulls, empty strings and non-ASCII text; bodies as their UTF-8 bytes', () => {
    const decoded = decodeBatch(encodeBatch(records));
    expect(decoded.map((r) => ({ ...r, body: Buffer.from(r.body).toString('utf8') }))).toEqual(records);
  });

  it('hashes the body bytes exactly as the body text', () => {
    const decoded = decodeBatch(encodeBatch(records));
    decoded.forEach((r, i) => expect(chainHash('p', r.body)).toBe(chainHash('p', records[i]!.body)));
  });

  it('hashes bytes and text alike for a body larger than the hashing scratch buffer', () => {
    const big = prepareRecord(decision({ reason: 'ü🚦'.repeat(12_000) }), []);
    const [decoded] = decodeBatch(encodeBatch([big]));
    expect(decoded!.body.length).toBeGreaterThan(64 * 1024);
    expect(chainHash('0'.repeat(64), decoded!.body)).toBe(chainHash('0'.repeat(64), big.body));
  });

  it('fills its buffer to the byte with multi-byte text and input bytes, then grows, losing nothing', () => {
    // Bodies of 3-byte characters: the cheap 3x bound and the exact byte count disagree near the end.
    const wide = Array.from({ length: 400 }, (_, i) => prepareRecord(decision({ decisionId: `w-${i}`, reason: '€'.repeat(50 + (i % 97)) }), []));
    const input = Buffer.from('input bytes ü'.repeat(7));
    const encoder = new BatchEncoder(1);
    for (const r of wide) encoder.add(r, input);
    const decoded = decodeBatch(encoder.finish());
    expect(decoded).toHaveLength(wide.length);
    decoded.forEach((r, i) => {
      expect(Buffer.from(r.body).toString('utf8')).toBe(wide[i]!.body);
      expect(Buffer.from(r.input!).equals(input)).toBe(true);
      expect(r.decisionId).toBe(`w-${i}`);
    });
    // A new encoder starts at the largest batch seen; a small batch in it round-trips too.
    const small = new BatchEncoder();
    small.add(records[0]!);
    expect(decodeBatch(small.finish()).map((r) => Buffer.from(r.body).toString('utf8'))).toEqual([records[0]!.body]);
  });

  it('encodes an empty batch', () => {
    expect(decodeBatch(encodeBatch([]))).toEqual([]);
  });
});
