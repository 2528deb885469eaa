import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch } from '../../src/audit/batch-codec.ts';
import { prepareRecord } from '../../src/audit/row.ts';
import { decision } from './fixtures.ts';

describe('writer-thread batch codec', () => {
  it('round-trips records with nulls, empty strings, colons, digits and non-ASCII text', () => {
    const records = [
      prepareRecord(decision({ path: '/a:b/12:3', reason: 'ünïcödé 🚦' }), ['/input/x']),
      prepareRecord(decision({ sourcePrincipal: undefined, requestPrincipal: undefined, method: '', matchedPolicies: [] }), []),
      prepareRecord(decision({ destination: '-:', path: '5:abcde' }), []),
    ];
    expect(decodeBatch(encodeBatch(records))).toEqual(records);
  });

  it('encodes an empty batch as an empty string', () => {
    expect(decodeBatch(encodeBatch([]))).toEqual([]);
  });
});
