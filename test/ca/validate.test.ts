import { describe, expect, it } from 'vitest';
import { createRootCertificate, generateCaKey, signingAuthorityOf } from '../../src/ca/ca-certs.ts';
import { createLeafTemplate } from '../../src/ca/template.ts';
import { validateLeafTemplate } from '../../src/ca/validate.ts';

const NOW = Date.UTC(2026, 0, 1);

describe('signing slot validation', () => {
  it('accepts a template whose probe certificate verifies under the CA', () => {
    const key = generateCaKey();
    const ca = createRootCertificate(key, { trustDomain: 'example.org', now: NOW, ttlMs: 86_400_000, skewMs: 0, label: 'x' });
    expect(() => validateLeafTemplate(createLeafTemplate(signingAuthorityOf(ca, key)), ca, 'example.org', NOW)).not.toThrow();
  });

  it('refuses a template signing with a key that is not the CA certificate\'s', () => {
    const key = generateCaKey();
    const ca = createRootCertificate(key, { trustDomain: 'example.org', now: NOW, ttlMs: 86_400_000, skewMs: 0, label: 'x' });
    const wrong = createLeafTemplate(signingAuthorityOf(ca, generateCaKey()));
    expect(() => validateLeafTemplate(wrong, ca, 'example.org', NOW)).toThrow(expect.objectContaining({ code: 'CA_INVALID' }));
  });
});
