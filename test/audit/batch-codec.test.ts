import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch } from '../../src/audit/batch-codec.ts';
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

  it('encodes an empty batch', () => {
    expect(decodeBatch(encodeBatch([]))).toEqual([]);
  });
});
