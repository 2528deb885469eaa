/** Request header rules of HTTP/2 (RFC 9113 §8.2–8.3), pure: what makes a request malformed. */
import type { DecodedHeaders } from './hpack.ts';

/** A field name: no control, space, uppercase, colon (but a pseudo-header's first) or non-ASCII octet. */
const VALID_NAME = /^:?[^\x00-\x20:A-Z\x7f-\xff]+$/;
const INVALID_VALUE = /[\0\r\n]/;
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Why a request's header list is malformed (RFC 9113 §8.2–8.3), or undefined. */
export function malformedRequest(decoded: DecodedHeaders): string | undefined {
  const h = decoded.headers;
  if (decoded.uppercase) return 'uppercase header name';
  if (decoded.pseudoAfterRegular) return 'pseudo-header after a regular header';
  // Repeated values are joined, so a second :path would otherwise become part of the first.
  if (decoded.duplicatePseudo) return 'repeated pseudo-header';
  if (!h[':method'] || !h[':scheme'] || !h[':path']) return 'missing :method, :scheme or :path';
  for (const name of Object.keys(h)) {
    if (name.charCodeAt(0) === 58 && name !== ':method' && name !== ':scheme' && name !== ':path' && name !== ':authority') return `unknown pseudo-header ${name}`;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific header ${name}`;
    // RFC 9113 §8.2.1: handlers, logs and upstream requests must never see a forged line break.
    if (!VALID_NAME.test(name)) return 'invalid character in a header name';
    if (INVALID_VALUE.test(h[name]!)) return `NUL, CR or LF in header ${name}`;
  }
  if (h.te !== undefined && h.te !== 'trailers') return 'TE other than "trailers"';
  return undefined;
}
