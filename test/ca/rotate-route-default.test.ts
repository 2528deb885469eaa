/**
 * POST /v1/ca/rotate activates the prepared CA after the same safe delay as `meshward ca rotate`
 * unless asked otherwise: a CA that signs before sidecars hold its root breaks mTLS.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SAFE_ACTIVATION_DELAY_MS } from '../../src/ca/index.ts';
import { type Harness, startHarness } from '../sds/harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

interface RotateAnswer {
  prepared: { id: string };
  activatesAt: string;
  slots: { id: string; state: string; activateAt?: string }[];
}

async function rotate(payload: object): Promise<RotateAnswer> {
  const admin = h!.meshward.apiAuth.createToken('adm', 'admin');
  const res = await h!.meshward.http.inject({ method: 'POST', url: '/v1/ca/rotate', headers: { authorization: `Bearer ${admin}` }, payload });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as RotateAnswer;
}

const slotStates = async () => {
  const op = h!.meshward.apiAuth.createToken('op', 'operator');
  const res = await h!.meshward.http.inject({ method: 'GET', url: '/v1/ca', headers: { authorization: `Bearer ${op}` } });
  return (res.json() as { slots: { id: string; state: string }[] }).slots;
};

describe('POST /v1/ca/rotate activation delay', () => {
  it('defaults to the CLI default (6 min): the new CA is prepared, not yet signing, and the answer says when it will', async () => {
    expect(SAFE_ACTIVATION_DELAY_MS).toBe(360_000);
    h = await startHarness();
    const now = h.clock.now();
    const answer = await rotate({});
    const prepared = (await slotStates()).find((s) => s.id === answer.prepared.id);
    expect(prepared?.state).toBe('prepared');
    expect(answer.activatesAt).toBe(new Date(now + SAFE_ACTIVATION_DELAY_MS).toISOString());
    // Still prepared one second before the delay is over.
    h.clock.advance(SAFE_ACTIVATION_DELAY_MS - 1000);
    h.ca.authority.advance();
    expect((await slotStates()).find((s) => s.id === answer.prepared.id)?.state).toBe('prepared');
    h.clock.advance(1000);
    h.ca.authority.advance();
    expect((await slotStates()).find((s) => s.id === answer.prepared.id)?.state).toBe('active');
  });

  it('activates at once when asked with activateAfter "0s" (or "0")', async () => {
    for (const activateAfter of ['0s', '0']) {
      h = await startHarness();
      const now = h.clock.now();
      const answer = await rotate({ activateAfter });
      expect((await slotStates()).find((s) => s.id === answer.prepared.id)?.state).toBe('active');
      expect(answer.activatesAt).toBe(new Date(now).toISOString());
      await h.close();
      h = undefined;
    }
  });

  it('takes an explicit activateAfter as given', async () => {
    h = await startHarness();
    const now = h.clock.now();
    const answer = await rotate({ activateAfter: '90s' });
    expect(answer.activatesAt).toBe(new Date(now + 90_000).toISOString());
    expect(answer.slots.find((s) => s.id === answer.prepared.id)?.state).toBe('prepared');
  });
});
