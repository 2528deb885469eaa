/**
 * The HPACK Huffman code (RFC 7541 Appendix B) and a decoder for it. The decoder walks a
 * state machine four bits at a time: the states are the 256 internal nodes of the code tree,
 * and the 256 × 16 transition table is built once at module load. The shortest code is 5 bits,
 * so a nibble completes at most one symbol: one table read per nibble, no per-bit work and no
 * allocation per call (the caller hands in the output buffer).
 */

/**
 * Code and bit length per symbol, `[code, length]` flattened; symbols 0–255 are octets, 256 is
 * EOS. Codes are right-aligned (the RFC's hex column).
 */
const CODES: readonly number[] = [
  // 0–31: control octets
  0x1ff8, 13, 0x7fffd8, 23, 0xfffffe2, 28, 0xfffffe3, 28,
  0xfffffe4, 28, 0xfffffe5, 28, 0xfffffe6, 28, 0xfffffe7, 28,
  0xfffffe8, 28, 0xffffea, 24, 0x3ffffffc, 30, 0xfffffe9, 28,
  0xfffffea, 28, 0x3ffffffd, 30, 0xfffffeb, 28, 0xfffffec, 28,
  0xfffffed, 28, 0xfffffee, 28, 0xfffffef, 28, 0xffffff0, 28,
  0xffffff1, 28, 0xffffff2, 28, 0x3ffffffe, 30, 0xffffff3, 28,
  0xffffff4, 28, 0xffffff5, 28, 0xffffff6, 28, 0xffffff7, 28,
  0xffffff8, 28, 0xffffff9, 28, 0xffffffa, 28, 0xffffffb, 28,
  // 32–47: ' ' ! " # $ % & ' ( ) * + , - . /
  0x14, 6, 0x3f8, 10, 0x3f9, 10, 0xffa, 12,
  0x1ff9, 13, 0x15, 6, 0xf8, 8, 0x7fa, 11,
  0x3fa, 10, 0x3fb, 10, 0xf9, 8, 0x7fb, 11,
  0xfa, 8, 0x16, 6, 0x17, 6, 0x18, 6,
  // 48–63: 0–9 : ; < = > ?
  0x0, 5, 0x1, 5, 0x2, 5, 0x19, 6,
  0x1a, 6, 0x1b, 6, 0x1c, 6, 0x1d, 6,
  0x1e, 6, 0x1f, 6, 0x5c, 7, 0xfb, 8,
  0x7ffc, 15, 0x20, 6, 0xffb, 12, 0x3fc, 10,
  // 64–79: @ A–O
  0x1ffa, 13, 0x21, 6, 0x5d, 7, 0x5e, 7,
  0x5f, 7, 0x60, 7, 0x61, 7, 0x62, 7,
  0x63, 7, 0x64, 7, 0x65, 7, 0x66, 7,
  0x67, 7, 0x68, 7, 0x69, 7, 0x6a, 7,
  // 80–95: P–Z [ \ ] ^ _
  0x6b, 7, 0x6c, 7, 0x6d, 7, 0x6e, 7,
  0x6f, 7, 0x70, 7, 0x71, 7, 0x72, 7,
  0xfc, 8, 0x73, 7, 0xfd, 8, 0x1ffb, 13,
  0x7fff0, 19, 0x1ffc, 13, 0x3ffc, 14, 0x22, 6,
  // 96–111: ` a–o
  0x7ffd, 15, 0x3, 5, 0x23, 6, 0x4, 5,
  0x24, 6, 0x5, 5, 0x25, 6, 0x26, 6,
  0x27, 6, 0x6, 5, 0x74, 7, 0x75, 7,
  0x28, 6, 0x29, 6, 0x2a, 6, 0x7, 5,
  // 112–127: p–z { | } ~ DEL
  0x2b, 6, 0x76, 7, 0x2c, 6, 0x8, 5,
  0x9, 5, 0x2d, 6, 0x77, 7, 0x78, 7,
  0x79, 7, 0x7a, 7, 0x7b, 7, 0x7ffe, 15,
  0x7fc, 11, 0x3ffd, 14, 0x1ffd, 13, 0xffffffc, 28,
  // 128–191
  0xfffe6, 20, 0x3fffd2, 22, 0xfffe7, 20, 0xfffe8, 20,
  0x3fffd3, 22, 0x3fffd4, 22, 0x3fffd5, 22, 0x7fffd9, 23,
  0x3fffd6, 22, 0x7fffda, 23, 0x7fffdb, 23, 0x7fffdc, 23,
  0x7fffdd, 23, 0x7fffde, 23, 0xffffeb, 24, 0x7fffdf, 23,
  0xffffec, 24, 0xffffed, 24, 0x3fffd7, 22, 0x7fffe0, 23,
  0xffffee, 24, 0x7fffe1, 23, 0x7fffe2, 23, 0x7fffe3, 23,
  0x7fffe4, 23, 0x1fffdc, 21, 0x3fffd8, 22, 0x7fffe5, 23,
  0x3fffd9, 22, 0x7fffe6, 23, 0x7fffe7, 23, 0xffffef, 24,
  0x3fffda, 22, 0x1fffdd, 21, 0xfffe9, 20, 0x3fffdb, 22,
  0x3fffdc, 22, 0x7fffe8, 23, 0x7fffe9, 23, 0x1fffde, 21,
  0x7fffea, 23, 0x3fffdd, 22, 0x3fffde, 22, 0xfffff0, 24,
  0x1fffdf, 21, 0x3fffdf, 22, 0x7fffeb, 23, 0x7fffec, 23,
  0x1fffe0, 21, 0x1fffe1, 21, 0x3fffe0, 22, 0x1fffe2, 21,
  0x7fffed, 23, 0x3fffe1, 22, 0x7fffee, 23, 0x7fffef, 23,
  0xfffea, 20, 0x3fffe2, 22, 0x3fffe3, 22, 0x3fffe4, 22,
  0x7ffff0, 23, 0x3fffe5, 22, 0x3fffe6, 22, 0x7ffff1, 23,
  // 192–255
  0x3ffffe0, 26, 0x3ffffe1, 26, 0xfffeb, 20, 0x7fff1, 19,
  0x3fffe7, 22, 0x7ffff2, 23, 0x3fffe8, 22, 0x1ffffec, 25,
  0x3ffffe2, 26, 0x3ffffe3, 26, 0x3ffffe4, 26, 0x7ffffde, 27,
  0x7ffffdf, 27, 0x3ffffe5, 26, 0xfffff1, 24, 0x1ffffed, 25,
  0x7fff2, 19, 0x1fffe3, 21, 0x3ffffe6, 26, 0x7ffffe0, 27,
  0x7ffffe1, 27, 0x3ffffe7, 26, 0x7ffffe2, 27, 0xfffff2, 24,
  0x1fffe4, 21, 0x1fffe5, 21, 0x3ffffe8, 26, 0x3ffffe9, 26,
  0xffffffd, 28, 0x7ffffe3, 27, 0x7ffffe4, 27, 0x7ffffe5, 27,
  0xfffec, 20, 0xfffff3, 24, 0xfffed, 20, 0x1fffe6, 21,
  0x3fffe9, 22, 0x1fffe7, 21, 0x1fffe8, 21, 0x7ffff3, 23,
  0x3fffea, 22, 0x3fffeb, 22, 0x1ffffee, 25, 0x1ffffef, 25,
  0xfffff4, 24, 0xfffff5, 24, 0x3ffffea, 26, 0x7ffff4, 23,
  0x3ffffeb, 26, 0x7ffffe6, 27, 0x3ffffec, 26, 0x3ffffed, 26,
  0x7ffffe7, 27, 0x7ffffe8, 27, 0x7ffffe9, 27, 0x7ffffea, 27,
  0x7ffffeb, 27, 0xffffffe, 28, 0x7ffffec, 27, 0x7ffffed, 27,
  0x7ffffee, 27, 0x7ffffef, 27, 0x7fffff0, 27, 0x3ffffee, 26,
  // 256: EOS
  0x3fffffff, 30,
];

export const EOS = 256;

/** The code of a symbol (right-aligned) and its length in bits. */
export function huffmanCode(symbol: number): { code: number; bits: number } {
  return { code: CODES[symbol * 2]!, bits: CODES[symbol * 2 + 1]! };
}

// Transition entry layout: bits 0–7 next state, 8–15 the emitted octet, then two flags.
const EMIT = 1 << 16;
const FAIL = 1 << 17;

/** The code tree: `zero[node]`/`one[node]` is a child node (> 0) or a leaf `~symbol` (< 0). */
function buildTree(): { zero: Int32Array; one: Int32Array } {
  // 257 leaves of a complete binary tree → exactly 256 internal nodes; 0 is the root.
  const zero = new Int32Array(256);
  const one = new Int32Array(256);
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const code = CODES[sym * 2]!;
    const bits = CODES[sym * 2 + 1]!;
    let node = 0;
    for (let bit = bits - 1; bit >= 0; bit--) {
      const side = (code >>> bit) & 1 ? one : zero;
      const child = side[node]!;
      if (child < 0) throw new Error(`huffman table: code of ${sym} extends the code of ${~child}`);
      if (bit === 0) {
        if (child !== 0) throw new Error(`huffman table: code of ${sym} is a prefix of another`);
        side[node] = ~sym;
      } else if (child === 0) {
        if (nodes === 256) throw new Error('huffman table: more than 256 internal nodes');
        side[node] = nodes;
        node = nodes++;
      } else {
        node = child;
      }
    }
  }
  // A complete code leaves no hole: every bit string decodes to something (or EOS).
  for (let n = 0; n < nodes; n++) {
    if (zero[n] === 0 || one[n] === 0) throw new Error('huffman table: code is not complete');
  }
  return { zero, one };
}

function buildTables(): { transitions: Uint32Array; accepting: Uint8Array } {
  const { zero, one } = buildTree();
  const transitions = new Uint32Array(256 * 16);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const next = (nibble >>> bit) & 1 ? one[node]! : zero[node]!;
        if (next >= 0) {
          node = next;
          continue;
        }
        const sym = ~next;
        if (sym === EOS) {
          entry = FAIL; // RFC 7541 §5.2: an EOS inside a string is a decoding error
          break;
        }
        entry = EMIT | (sym << 8);
        node = 0;
      }
      transitions[state * 16 + nibble] = entry === FAIL ? FAIL : entry | node;
    }
  }
  // A string may end where the bits since the last symbol are at most 7 ones: the nodes on the
  // all-ones path from the root down to depth 7 (RFC 7541 §5.2 padding rule).
  const accepting = new Uint8Array(256);
  for (let node = 0, depth = 0; depth <= 7; depth++, node = one[node]!) accepting[node] = 1;
  return { transitions, accepting };
}

const { transitions: TRANSITIONS, accepting: ACCEPTING } = buildTables();

/**
 * Decodes `src[start, end)` into `out` from index 0 and answers the number of octets written,
 * or -1 if the string is invalid (EOS inside, padding longer than 7 bits or not all ones).
 * `out` must hold `huffmanMaxDecodedLength(end - start)` octets.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  return walk(src, start, end, out);
}

/** Like `huffmanDecode` but only validates and counts: for strings too large to keep. */
export function huffmanDecodedLength(src: Uint8Array, start: number, end: number): number {
  return walk(src, start, end, undefined);
}

/** The decoding state machine, a nibble per step; symbols go to `out` when there is one. */
function walk(src: Uint8Array, start: number, end: number, out: Uint8Array | undefined): number {
  let state = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    let t = TRANSITIONS[(state << 4) | (byte >>> 4)]!;
    if (t & FAIL) return -1;
    if (t & EMIT) {
      if (out) out[n] = (t >>> 8) & 0xff;
      n++;
    }
    t = TRANSITIONS[((t & 0xff) << 4) | (byte & 0x0f)]!;
    if (t & FAIL) return -1;
    if (t & EMIT) {
      if (out) out[n] = (t >>> 8) & 0xff;
      n++;
    }
    state = t & 0xff;
  }
  return ACCEPTING[state] ? n : -1;
}

/** Upper bound of the decoded length of `encodedLength` octets: the shortest code is 5 bits. */
export function huffmanMaxDecodedLength(encodedLength: number): number {
  return Math.floor((encodedLength * 8) / 5);
}

/** Lower bound of the decoded length of a valid string of `encodedLength` octets. */
export function huffmanMinDecodedLength(encodedLength: number): number {
  // At most 7 padding bits; every other bit belongs to a code of at most 30 bits.
  return Math.max(0, Math.floor((encodedLength * 8 - 7) / 30));
}
