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

  it('encodes an empty batch', () => {
    expect(decodeBatch(encodeBatch([]))).toEqual([]);
  });
});
