import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatLogLine, resolveLogFormat } from '../../src/lib/log-format.ts';
import { createLogger } from '../../src/lib/logger.ts';

function sink(): { stream: Writable; text(): string } {
  let out = '';
  const stream = new Writable({ write(chunk, _enc, done) { out += chunk.toString(); done(); } });
  return { stream, text: () => out };
}

describe('log formats', () => {
  it('writes a text line with time, level, component, message and fields, redaction kept', () => {
    const s = sink();
    const logger = createLogger({ format: 'text', destination: s.stream }).child({ component: 'http' });
    logger.warn({ route: '/v1/config', token: 'mw_secret', attempts: 3 }, 'slow client');
    expect(s.text()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}http: slow client route=\/v1\/config token=\[REDACTED\] attempts=3\n$/);
    expect(s.text()).not.toContain('mw_secret');
  });

  it('prints an error\'s stack indented under its line', () => {
    const line = formatLogLine(JSON.stringify({ level: 50, time: 0, msg: 'request failed', err: { message: 'boom', stack: 'Error: boom\n    at x (y.ts:1:1)' } }));
    expect(line).toBe('00:00:00.000 ERROR request failed\n    Error: boom\n        at x (y.ts:1:1)\n');
  });

  it('prints code and message of an error logged as a plain object, whose stack the logger leaves empty', () => {
    const s = sink();
    createLogger({ format: 'text', destination: s.stream }).error({ err: { code: 'POLICY_COMPILE_FAILED', message: 'rego/p.rego:4:1: rego_parse_error' } }, 'start failed');
    expect(s.text()).toMatch(/start failed\n {4}POLICY_COMPILE_FAILED: rego\/p\.rego:4:1: rego_parse_error\n$/);
  });

  it('keeps JSON lines when asked for json', () => {
    const s = sink();
    createLogger({ format: 'json', destination: s.stream }).info({ a: 1 }, 'hello');
    expect(JSON.parse(s.text())).toMatchObject({ level: 30, msg: 'hello', a: 1, service: 'meshward' });
  });

  it('chooses text on a terminal and json otherwise, unless the flag or MESHWARD_LOG_FORMAT says', () => {
    expect(resolveLogFormat(undefined, {}, true)).toBe('text');
    expect(resolveLogFormat(undefined, {}, false)).toBe('json');
    expect(resolveLogFormat(undefined, { MESHWARD_LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(resolveLogFormat('text', { MESHWARD_LOG_FORMAT: 'json' }, false)).toBe('text');
  });

  it('refuses an unknown format, naming the choices', () => {
    expect(() => resolveLogFormat('pretty', {}, false)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('text, json') }));
  });
});
