import http2 from 'node:http2';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeHeaderBlock, HeaderListTooLargeError, HpackDecoder, HpackError } from '../../../src/lib/h2/hpack.ts';
import { EOS, huffmanCode, huffmanDecode, huffmanMaxDecodedLength } from '../../../src/lib/h2/huffman.ts';

/** Hex as laid out in RFC 7541 Appendix C (whitespace ignored). */
function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

/** A test-only Huffman encoder straight from the code table (the module only decodes). */
function huffmanEncode(octets: Uint8Array): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const o of octets) {
    const { code, bits: n } = huffmanCode(o);
    for (let b = n - 1; b >= 0; b--) {
      acc = (acc << 1) | ((code >>> b) & 1);
      if (++bits === 8) {
        out.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out.push(((acc << (8 - bits)) | (0xff >> bits)) & 0xff); // pad with the EOS prefix (ones)
  return Buffer.from(out);
}

/** A string literal header (§5.2), Huffman-coded or raw. */
function stringLiteral(s: string, huffman = false): Buffer {
  const octets = Buffer.from(s, 'latin1');
  const body = huffman ? huffmanEncode(octets) : octets;
  return Buffer.concat([integer(body.length, 7, huffman ? 0x80 : 0), body]);
}

/** A §5.1 integer with an N-bit prefix. */
function integer(value: number, prefixBits: number, flags: number): Buffer {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) return Buffer.from([flags | value]);
  const out = [flags | mask];
  for (value -= mask; value >= 128; value = Math.floor(value / 128)) out.push((value % 128) | 0x80);
  out.push(value);
  return Buffer.from(out);
}

/** "Literal with incremental indexing — new name". */
function literalIndexed(name: string, value: string, huffman = false): Buffer {
  return Buffer.concat([Buffer.from([0x40]), stringLiteral(name, huffman), stringLiteral(value, huffman)]);
}

/** "Literal without indexing — new name". */
function literalPlain(name: string, value: string, huffman = false): Buffer {
  return Buffer.concat([Buffer.from([0x00]), stringLiteral(name, huffman), stringLiteral(value, huffman)]);
}

function plain(headers: Record<string, string>): Record<string, string> {
  return { ...headers };
}

describe('huffman', () => {
  it('has a complete prefix code: the Kraft sum of the 257 code lengths is exactly 1', () => {
    let sum = 0;
    for (let s = 0; s <= EOS; s++) sum += 2 ** -huffmanCode(s).bits;
    expect(sum).toBe(1);
  });

  it('is the canonical code of its lengths (codes of one length ascend with the symbol)', () => {
    const symbols = Array.from({ length: EOS + 1 }, (_, s) => s).sort((a, b) => huffmanCode(a).bits - huffmanCode(b).bits || a - b);
    let code = 0;
    let bits = huffmanCode(symbols[0]!).bits;
    for (const s of symbols) {
      const c = huffmanCode(s);
      code *= 2 ** (c.bits - bits);
      bits = c.bits;
      expect(c.code, `symbol ${s}`).toBe(code);
      code++;
    }
  });

  it('decodes every octet value, alone and all together', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const out = Buffer.alloc(1024);
    for (let o = 0; o < 256; o++) {
      const enc = huffmanEncode(Buffer.from([o]));
      expect(huffmanDecode(enc, 0, enc.length, out)).toBe(1);
      expect(out[0]).toBe(o);
    }
    const enc = huffmanEncode(all);
    expect(huffmanMaxDecodedLength(enc.length)).toBeGreaterThanOrEqual(256);
    const n = huffmanDecode(enc, 0, enc.length, out);
    expect(out.subarray(0, n)).toEqual(all);
  });
});

describe('HpackDecoder: RFC 7541 Appendix C', () => {
  it('C.2.1 literal with indexing adds custom-key to the dynamic table', () => {
    const d = new HpackDecoder();
    const r = d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
    expect(plain(r.headers)).toEqual({ 'custom-key': 'custom-header' });
    expect(d.dynamicTableSize).toBe(55);
    expect(d.dynamicTableLength).toBe(1);
  });

  it('C.2.2 literal without indexing leaves the table empty', () => {
    const d = new HpackDecoder();
    const r = d.decode(hex('040c 2f73 616d 706c 652f 7061 7468'));
    expect(plain(r.headers)).toEqual({ ':path': '/sample/path' });
    expect(d.dynamicTableSize).toBe(0);
  });

  it('C.2.3 literal never indexed leaves the table empty', () => {
    const d = new HpackDecoder();
    const r = d.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74'));
    expect(plain(r.headers)).toEqual({ password: 'secret' });
    expect(d.dynamicTableSize).toBe(0);
  });

  it('C.2.4 indexed field from the static table', () => {
    const d = new HpackDecoder();
    expect(plain(d.decode(hex('82')).headers)).toEqual({ ':method': 'GET' });
    expect(d.dynamicTableSize).toBe(0);
  });

  const requests = [
    { ':method': 'GET', ':scheme': 'http', ':path': '/', ':authority': 'www.example.com' },
    { ':method': 'GET', ':scheme': 'http', ':path': '/', ':authority': 'www.example.com', 'cache-control': 'no-cache' },
    { ':method': 'GET', ':scheme': 'https', ':path': '/index.html', ':authority': 'www.example.com', 'custom-key': 'custom-value' },
  ];
  const requestTableSizes = [57, 110, 164];

  it('C.3 three requests without Huffman share one dynamic table', () => {
    const d = new HpackDecoder();
    const blocks = [
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ];
    blocks.forEach((b, i) => {
      const r = d.decode(hex(b));
      expect(plain(r.headers)).toEqual(requests[i]);
      expect(r.pseudoAfterRegular).toBe(false);
      expect(d.dynamicTableSize).toBe(requestTableSizes[i]);
    });
    expect(d.dynamicTableLength).toBe(3);
  });

  it('C.4 three requests with Huffman share one dynamic table', () => {
    const d = new HpackDecoder();
    const blocks = [
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ];
    blocks.forEach((b, i) => {
      expect(plain(d.decode(hex(b)).headers)).toEqual(requests[i]);
      expect(d.dynamicTableSize).toBe(requestTableSizes[i]);
    });
  });

  const responses = [
    { ':status': '302', 'cache-control': 'private', date: 'Mon, 21 Oct 2013 20:13:21 GMT', location: 'https://www.example.com' },
    { ':status': '307', 'cache-control': 'private', date: 'Mon, 21 Oct 2013 20:13:21 GMT', location: 'https://www.example.com' },
    {
      ':status': '200',
      'cache-control': 'private',
      date: 'Mon, 21 Oct 2013 20:13:22 GMT',
      location: 'https://www.example.com',
      'content-encoding': 'gzip',
      'set-cookie': 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
    },
  ];
  const responseTableSizes = [222, 222, 215];
  const responseTableLengths = [4, 4, 3];

  it('C.5 three responses without Huffman evict from a 256-octet table', () => {
    const d = new HpackDecoder({ maxTableSize: 256 });
    const blocks = [
      `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768
       7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
      '4803 3330 37c1 c0bf',
      `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d
       4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572
       7369 6f6e 3d31`,
    ];
    blocks.forEach((b, i) => {
      expect(plain(d.decode(hex(b)).headers)).toEqual(responses[i]);
      expect(d.dynamicTableSize).toBe(responseTableSizes[i]);
      expect(d.dynamicTableLength).toBe(responseTableLengths[i]);
    });
  });

  it('C.6 three responses with Huffman evict from a 256-octet table', () => {
    const d = new HpackDecoder({ maxTableSize: 256 });
    const blocks = [
      `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b
       97c8 e9ae 82ae 43d3`,
      '4883 640e ffc1 c0bf',
      `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf
       cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
    ];
    blocks.forEach((b, i) => {
      expect(plain(d.decode(hex(b)).headers)).toEqual(responses[i]);
      expect(d.dynamicTableSize).toBe(responseTableSizes[i]);
      expect(d.dynamicTableLength).toBe(responseTableLengths[i]);
    });
  });
});

describe('HpackDecoder: header list semantics', () => {
  it('joins a repeated name with ", " and cookie crumbs with "; "', () => {
    const d = new HpackDecoder();
    const block = Buffer.concat([
      literalPlain('x-a', '1'),
      literalPlain('cookie', 'a=1'),
      literalPlain('x-a', '2', true),
      literalPlain('cookie', 'b=2', true),
    ]);
    expect(plain(d.decode(block).headers)).toEqual({ 'x-a': '1, 2', cookie: 'a=1; b=2' });
  });

  it('flags a pseudo-header after a regular field, and a repeated pseudo-header', () => {
    const d = new HpackDecoder();
    const ok = d.decode(Buffer.concat([hex('82 84'), literalPlain('x-a', '1')]));
    expect(ok.pseudoAfterRegular).toBe(false);
    expect(ok.duplicatePseudo).toBe(false);
    const late = d.decode(Buffer.concat([hex('82'), literalPlain('x-a', '1'), hex('84')]));
    expect(late.pseudoAfterRegular).toBe(true);
    const twice = d.decode(hex('82 84 85'));
    expect(twice.duplicatePseudo).toBe(true);
    expect(twice.pseudoAfterRegular).toBe(false);
  });

  it('flags an uppercase name, also when a later block references it from the dynamic table', () => {
    const d = new HpackDecoder();
    expect(d.decode(literalIndexed('X-Upper', 'v')).uppercase).toBe(true);
    const again = d.decode(hex('be'));
    expect(again.uppercase).toBe(true);
    expect(plain(again.headers)).toEqual({ 'X-Upper': 'v' });
    expect(d.decode(literalPlain('x-lower', 'V')).uppercase).toBe(false);
  });

  it('keeps __proto__ as an ordinary header without touching any prototype', () => {
    const PROTO = '__proto__'; // a variable: the literal key reads like the deprecated accessor
    const d = new HpackDecoder();
    const r = d.decode(Buffer.concat([literalPlain(PROTO, 'polluted'), literalPlain('constructor', 'x'), literalIndexed(PROTO, 'again')]));
    expect(Object.keys(r.headers)).toEqual([PROTO, 'constructor']);
    expect(Object.getOwnPropertyDescriptor(r.headers, PROTO)?.value).toBe('polluted, again');
    expect(r.headers['constructor']).toBe('x');
    // Nothing is inherited: names of Object.prototype members read as absent.
    expect(r.headers['toString']).toBeUndefined();
    expect(r.headers['hasOwnProperty']).toBeUndefined();
    expect('valueOf' in r.headers).toBe(false);
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(Object.getOwnPropertyDescriptor(d.decode(hex('be')).headers, PROTO)?.value).toBe('again');
    // A name of an Object.prototype member is not joined with an inherited value.
    expect(plain(d.decode(literalPlain('tostring', 'a')).headers)).toEqual({ tostring: 'a' });
    expect(d.decode(literalPlain('toString', 'a')).headers['toString']).toBe('a');
  });

  it('decodes repeated non-indexed literals (the :path case) right, also when they share a cache slot', () => {
    const d = new HpackDecoder();
    // Same length, first and last octet: only the middle tells them apart.
    const paths = Array.from({ length: 40 }, (_, i) => `/svc.v1.S/M${String(i).padStart(2, '0')}x`);
    for (let round = 0; round < 3; round++) {
      for (const [i, path] of paths.entries()) {
        const block = Buffer.concat([hex('83 86'), Buffer.from([0x04]), stringLiteral(path, i % 2 === 0)]);
        expect(plain(d.decode(block).headers)).toEqual({ ':method': 'POST', ':scheme': 'http', ':path': path });
      }
    }
    // A raw and a Huffman literal of the same octets are different keys with the same value.
    const raw = Buffer.concat([Buffer.from([0x04]), stringLiteral('/a/b')]);
    const huff = Buffer.concat([Buffer.from([0x04]), stringLiteral('/a/b', true)]);
    expect(plain(d.decode(raw).headers)).toEqual({ ':path': '/a/b' });
    expect(plain(d.decode(huff).headers)).toEqual({ ':path': '/a/b' });
    // A cached value still counts against the header-list limit.
    const small = new HpackDecoder({ maxHeaderListSize: 60 });
    const field = Buffer.concat([Buffer.from([0x04]), stringLiteral('/'.repeat(20))]);
    expect(plain(small.decode(field).headers)).toEqual({ ':path': '/'.repeat(20) });
    expect(() => small.decode(Buffer.concat([field, field]))).toThrow(HeaderListTooLargeError);
  });

  it('accepts dynamic table size updates at the start of a block, evicting to the new size', () => {
    const d = new HpackDecoder();
    d.decode(literalIndexed('k', 'v'));
    expect(d.dynamicTableSize).toBe(34);
    // Two updates: down to 0 (empties the table) then back to 4096.
    expect(plain(d.decode(hex('20 3fe11f 82')).headers)).toEqual({ ':method': 'GET' });
    expect(d.dynamicTableSize).toBe(0);
    expect(() => d.decode(hex('be'))).toThrow(HpackError);
  });

  it('empties the table for an entry larger than the table, without failing', () => {
    const d = new HpackDecoder({ maxTableSize: 100 });
    d.decode(literalIndexed('k', 'v'));
    expect(plain(d.decode(literalIndexed('big', 'x'.repeat(100))).headers)).toEqual({ big: 'x'.repeat(100) });
    expect(d.dynamicTableLength).toBe(0);
    expect(d.dynamicTableSize).toBe(0);
  });

  it('keeps indexes right as the table grows past its initial ring and wraps while evicting', () => {
    const d = new HpackDecoder();
    const values: string[] = [];
    for (let i = 0; i < 300; i++) {
      const v = `value-${i}-${'z'.repeat(i % 50)}`;
      values.push(v);
      d.decode(literalIndexed(`k${i}`, v, i % 2 === 0));
      // The newest is 62; the one before it 63.
      expect(plain(d.decode(hex('be')).headers)).toEqual({ [`k${i}`]: v });
      if (i > 0) expect(plain(d.decode(hex('bf')).headers)).toEqual({ [`k${i - 1}`]: values[i - 1] });
    }
    expect(d.dynamicTableSize).toBeLessThanOrEqual(4096);
  });
});

describe('HpackDecoder: hostile input', () => {
  const cases: Array<[string, Buffer]> = [
    ['an indexed field with index 0', hex('80')],
    ['an index past the static and dynamic tables', hex('be')],
    ['a huge index', hex('ff ff ff ff 07')],
    ['a literal whose name index is past the table', hex('7f 00 01 61')],
    ['a truncated integer', hex('ff')],
    ['an integer whose continuation bytes stop mid-way', hex('ff 80 80')],
    ['an integer with too many continuation bytes', hex('7f ff ff ff ff ff ff ff ff ff ff')],
    ['an integer above 2^31', hex('ff ff ff ff ff 0f')],
    ['a string length past the end of the block', hex('40 0a 61')],
    ['a string length of 2^28 in a tiny block', hex('40 7f ff ff ff 7f')],
    ['a literal cut before its value', hex('40 01 61')],
    ['a Huffman string holding EOS', hex('40 84 ff ff ff ff 01 61')],
    ['a Huffman string with EOS after a symbol', Buffer.concat([hex('40 86 1f ff ff ff ff fc'), stringLiteral('v')])],
    ['a Huffman string whose padding is 8 bits or more', Buffer.concat([hex('40 82 1f ff'), stringLiteral('v')])],
    ['a Huffman string of only a padding byte', Buffer.concat([hex('40 81 ff'), stringLiteral('v')])],
    ['a Huffman string whose padding is not all ones', Buffer.concat([hex('40 81 1e'), stringLiteral('v')])],
    ['a dynamic table size update above maxTableSize', hex('3f e2 1f')],
    ['a dynamic table size update after a field', hex('82 20')],
  ];
  for (const [what, block] of cases) {
    it(`rejects ${what} with HpackError`, () => {
      expect(() => new HpackDecoder().decode(block)).toThrow(HpackError);
    });
  }

  it('accepts the boundary cases next to those errors', () => {
    const d = new HpackDecoder();
    expect(plain(d.decode(hex('3f e1 1f')).headers)).toEqual({}); // update to exactly 4096
    expect(plain(d.decode(hex('40 81 1f 00')).headers)).toEqual({ a: '' }); // 'a' + 3 ones of padding
    expect(plain(d.decode(hex('40 80 00')).headers)).toEqual({ '': '' }); // empty Huffman name
  });

  it('throws only HpackError or HeaderListTooLargeError on random and mutated blocks', () => {
    let seed = 0x2545f491;
    const rand = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const valid = hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf 4803 3330 37 4082 6402 85 aec3 771a 4b');
    for (let i = 0; i < 20_000; i++) {
      let block: Buffer;
      if (i % 2 === 0) {
        block = Buffer.from(Array.from({ length: rand(40) }, () => rand(256)));
      } else {
        block = Buffer.from(valid.subarray(0, rand(valid.length + 1)));
        for (let m = rand(4); m >= 0; m--) if (block.length) block[rand(block.length)] = rand(256);
      }
      const d = new HpackDecoder({ maxHeaderListSize: 256 + rand(512), maxTableSize: rand(2) ? 4096 : 64 });
      try {
        d.decode(block);
        d.decode(block);
      } catch (err) {
        if (!(err instanceof HpackError || err instanceof HeaderListTooLargeError)) throw err;
      }
    }
  });
});

describe('HpackDecoder: header list limit', () => {
  it('throws HeaderListTooLargeError on a block that references a 4 KB entry 100 times, and stays in sync', () => {
    const d = new HpackDecoder();
    const big = 'b'.repeat(4000);
    const bomb = Buffer.concat([literalIndexed('x-bomb', big), Buffer.alloc(100, 0xbe)]);
    expect(() => d.decode(bomb)).toThrow(HeaderListTooLargeError);
    expect(d.dynamicTableLength).toBe(1);
    expect(plain(d.decode(hex('82 be')).headers)).toEqual({ ':method': 'GET', 'x-bomb': big });
  });

  it('still applies insertions that come after the limit was crossed', () => {
    const d = new HpackDecoder({ maxHeaderListSize: 200 });
    const block = Buffer.concat([literalPlain('x-big', 'x'.repeat(300)), literalIndexed('k1', 'v1', true), literalIndexed('k2', 'v2'), hex('bf')]);
    expect(() => d.decode(block)).toThrow(HeaderListTooLargeError);
    expect(plain(d.decode(hex('be bf')).headers)).toEqual({ k2: 'v2', k1: 'v1' });
  });

  it('counts a single string larger than the limit as over it, Huffman-coded or not', () => {
    const d = new HpackDecoder({ maxHeaderListSize: 1000 });
    expect(() => d.decode(literalPlain('x', 'y'.repeat(5000)))).toThrow(HeaderListTooLargeError);
    expect(() => d.decode(literalPlain('x', '0'.repeat(5000), true))).toThrow(HeaderListTooLargeError);
    expect(() => d.decode(literalPlain('n'.repeat(5000), 'v', true))).toThrow(HeaderListTooLargeError);
    expect(plain(d.decode(literalPlain('x', 'y'.repeat(900))).headers)).toEqual({ x: 'y'.repeat(900) });
  });

  it('counts 32 octets per field, so many empty fields cross the limit too', () => {
    const d = new HpackDecoder({ maxHeaderListSize: 32 * 100 });
    d.decode(literalIndexed('a', ''));
    expect(() => d.decode(Buffer.alloc(100, 0xbe))).toThrow(HeaderListTooLargeError); // 100 × 33
    expect(plain(d.decode(Buffer.alloc(96, 0xbe)).headers)).toEqual({ a: ', '.repeat(95) }); // 96 × 33 = 3168
  });

  it('prefers HpackError when a block over the limit is also malformed', () => {
    const d = new HpackDecoder({ maxHeaderListSize: 100 });
    expect(() => d.decode(Buffer.concat([literalPlain('x', 'y'.repeat(200)), hex('80')]))).toThrow(HpackError);
  });
});

describe('encodeHeaderBlock', () => {
  it('writes :status 200 as the indexed field 0x88 and static names by index', () => {
    expect(encodeHeaderBlock([[':status', '200']])).toEqual(hex('88'));
    expect(encodeHeaderBlock([['content-type', 'application/grpc']])).toEqual(Buffer.concat([hex('0f 10 10'), Buffer.from('application/grpc')]));
    expect(encodeHeaderBlock([['grpc-status', '0']])).toEqual(Buffer.concat([hex('00 0b'), Buffer.from('grpc-status'), hex('01'), Buffer.from('0')]));
  });

  it('round-trips through HpackDecoder without touching its dynamic table', () => {
    const long = 'L'.repeat(300);
    const fields: Array<[string, string]> = [
      [':status', '200'],
      [':status', '404'],
      ['content-type', 'application/grpc'],
      ['www-authenticate', 'Bearer'],
      ['grpc-message', ''],
      ['x-long-value', long],
      ['x-'.padEnd(200, 'n'), 'v'],
      ['x-latin1', 'caf\u00e9'],
    ];
    const d = new HpackDecoder();
    const r = d.decode(encodeHeaderBlock(fields));
    expect(plain(r.headers)).toEqual({
      ':status': '200, 404',
      'content-type': 'application/grpc',
      'www-authenticate': 'Bearer',
      'grpc-message': '',
      'x-long-value': long,
      ['x-'.padEnd(200, 'n')]: 'v',
      'x-latin1': 'caf\u00e9',
    });
    expect(d.dynamicTableLength).toBe(0);
    expect(plain(d.decode(encodeHeaderBlock([])).headers)).toEqual({});
  });
});

/** Splits a client's byte stream (after the 24-byte preface) into HTTP/2 frames. */
function frameReader(onFrame: (type: number, flags: number, stream: number, payload: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  let prefaceLeft = 24;
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    if (prefaceLeft > 0) {
      const n = Math.min(prefaceLeft, pending.length);
      pending = pending.subarray(n);
      prefaceLeft -= n;
    }
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      onFrame(pending[3]!, pending[4]!, pending.readUInt32BE(5) & 0x7fffffff, pending.subarray(9, 9 + length));
      pending = pending.subarray(9 + length);
    }
  };
}

const SETTINGS_EMPTY = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
const SETTINGS_ACK = Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0]);
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

/**
 * A raw TCP server that speaks just enough HTTP/2 for a node:http2 client: SETTINGS, SETTINGS
 * ACK, and every request header block (HEADERS + CONTINUATION, padding and priority stripped)
 * handed to `onBlock` in wire order.
 */
async function rawServer(onBlock: (socket: net.Socket, stream: number, block: Buffer) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(SETTINGS_EMPTY);
    let open: { stream: number; parts: Buffer[] } | null = null;
    socket.on(
      'data',
      frameReader((type, flags, stream, payload) => {
        if (type === 0x4 && !(flags & 0x1)) socket.write(SETTINGS_ACK);
        if (type === 0x1) {
          let start = 0;
          let end = payload.length;
          if (flags & FLAG_PADDED) {
            end -= payload[0]!;
            start = 1;
          }
          if (flags & FLAG_PRIORITY) start += 5;
          open = { stream, parts: [Buffer.from(payload.subarray(start, end))] };
        } else if (type === 0x9 && open) {
          open.parts.push(Buffer.from(payload));
        } else {
          return;
        }
        if (flags & FLAG_END_HEADERS) {
          onBlock(socket, open.stream, Buffer.concat(open.parts));
          open = null;
        }
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('interop with node:http2 (nghttp2)', () => {
  it('decodes the header blocks of three requests from a real client on one connection', async () => {
    const blocks: Buffer[] = [];
    let gotAll: () => void = () => {};
    const allCaptured = new Promise<void>((resolve) => {
      gotAll = resolve;
    });
    const server = await rawServer((_socket, _stream, block) => {
      blocks.push(block);
      if (blocks.length === 3) gotAll();
    });
    const long = Buffer.from(Array.from({ length: 1500 }, (_, i) => (i * 7919) % 256)).toString('base64');
    // Octets 0x80–0xff (latin1) padded with '0's so that nghttp2 picks Huffman for this value.
    const high = Array.from({ length: 128 }, (_, i) => String.fromCharCode(0x80 + i)).join('') + '0'.repeat(1200);
    const common = {
      ':method': 'POST',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'grpc-node-js/1.14.7',
      'grpc-accept-encoding': 'identity,deflate,gzip',
      authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlIn0.c2lnbmF0dXJl',
    };
    const sent: Array<Record<string, string | string[]>> = [
      { ...common, ':path': '/envoy.service.auth.v3.Authorization/Check', 'grpc-timeout': '9999m', 'x-long': long, 'x-repeated': ['one', 'two'], 'x-high': high },
      { ...common, ':path': '/envoy.service.auth.v3.Authorization/Check', 'grpc-timeout': '9998m', 'x-request-id': 'c0ffee-1' },
      { ...common, ':path': '/grpc.health.v1.Health/Check', 'grpc-timeout': '100m', 'x-request-id': 'c0ffee-2', cookie: ['a=1', 'b=2'], 'x-long': long },
    ];
    const client = http2.connect(`http://127.0.0.1:${server.port}`);
    client.on('error', () => {});
    try {
      for (const headers of sent) {
        const req = client.request(headers, { endStream: true });
        req.on('error', () => {});
      }
      await allCaptured;
    } finally {
      client.destroy();
      await server.close();
    }

    const d = new HpackDecoder();
    const decoded = blocks.map((b) => d.decode(b));
    decoded.forEach((r, i) => {
      const expected: Record<string, string> = { ':scheme': 'http', ':authority': `127.0.0.1:${server.port}` };
      for (const [k, v] of Object.entries(sent[i]!)) expected[k] = Array.isArray(v) ? v.join(k === 'cookie' ? '; ' : ', ') : v;
      expect(plain(r.headers)).toEqual(expected);
      expect(r.pseudoAfterRegular).toBe(false);
      expect(r.uppercase).toBe(false);
    });
    // nghttp2 Huffman-coded the high octets (they are not on the wire as is) and indexed the
    // repeated fields: the second block is mostly table references.
    expect(blocks[0]!.includes(Buffer.from(high.slice(0, 16), 'latin1'))).toBe(false);
    expect(blocks[1]!.length).toBeLessThan(blocks[0]!.length / 10);
    expect(d.dynamicTableLength).toBeGreaterThan(5);
  });

  it('sends encodeHeaderBlock output that a real client reads as the response headers', async () => {
    const block = encodeHeaderBlock([
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['x-test', 'v'],
    ]);
    const server = await rawServer((socket, stream) => {
      const frame = Buffer.alloc(9 + block.length);
      frame.writeUIntBE(block.length, 0, 3);
      frame[3] = 0x1;
      frame[4] = FLAG_END_STREAM | FLAG_END_HEADERS;
      frame.writeUInt32BE(stream, 5);
      block.copy(frame, 9);
      socket.write(frame);
    });
    const client = http2.connect(`http://127.0.0.1:${server.port}`);
    client.on('error', () => {});
    try {
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const req = client.request({ ':method': 'POST', ':path': '/svc/Method', 'content-type': 'application/grpc' }, { endStream: true });
        req.on('response', resolve);
        req.on('error', reject);
      });
      expect(headers[':status']).toBe(200);
      expect(headers['content-type']).toBe('application/grpc');
      expect(headers['x-test']).toBe('v');
    } finally {
      client.destroy();
      await server.close();
    }
  });
});
