import { describe, expect, it } from 'vitest';
import type { PlainObject } from '../../../../src/policy/rego/value.ts';
import { call, callError } from './helpers.ts';

const config = { aws_access_key: 'MYAWSACCESSKEYGOESHERE', aws_secret_access_key: 'MYAWSSECRETACCESSKEYGOESHERE', aws_service: 's3', aws_region: 'us-east-1' };
const at = 1451311705000000000n; // 2015-12-28T14:08:25Z

describe('providers.aws.sign_req', () => {
  it('signs a request with SigV4 (known answer from OPA)', () => {
    const signed = call('providers.aws.sign_req', { method: 'get', url: 'http://example.com' }, config, at) as PlainObject;
    expect(signed.headers).toEqual({
      Authorization:
        'AWS4-HMAC-SHA256 Credential=MYAWSACCESSKEYGOESHERE/20151228/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=0047a7016c81e5c7f29cd522f97e911e04fc472fced0aee7916cbc287ad6c8e3',
      host: 'example.com',
      'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'x-amz-date': '20151228T140825Z',
    });
  });

  it('signs request headers and the session token, and changes the signature with the body', () => {
    const base = call('providers.aws.sign_req', { method: 'get', url: 'https://example.com', headers: { foo: 'bar' } }, { ...config, aws_session_token: 't' }, at) as PlainObject;
    const auth = (base.headers as PlainObject).Authorization as string;
    expect(auth).toContain('SignedHeaders=foo;host;x-amz-content-sha256;x-amz-date;x-amz-security-token');
    const withBody = call('providers.aws.sign_req', { method: 'get', url: 'https://example.com', headers: { foo: 'bar' }, body: { a: 1 } }, { ...config, aws_session_token: 't' }, at) as PlainObject;
    expect((withBody.headers as PlainObject).Authorization).not.toBe(auth);
  });

  it('validates the request, the configuration and the time', () => {
    expect(callError('providers.aws.sign_req', {}, config, at).message).toBe(
      'providers.aws.sign_req: operand 1 missing required request parameters(s): {"method", "url"}',
    );
    expect(callError('providers.aws.sign_req', { method: 'get', url: 'u' }, { example: 1 }, at).code).toBe('eval_type_error');
    expect(callError('providers.aws.sign_req', { method: 'get', url: 'u' }, { ...config, disable_payload_signing: 'false' }, at).message).toContain(
      "invalid value for 'disable_payload_signing'",
    );
    expect(callError('providers.aws.sign_req', { method: 'get', url: 'u' }, config, -1).message).toContain('could not convert time_ns');
  });
});
