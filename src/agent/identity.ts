/**
 * The agent's identity: a P-256 key made here and never sent, a CSR to meshward, the X509-SVID
 * it answers, renewed at half its life (plus jitter) with a new key each time, and the trust
 * bundle followed as meshward publishes it. When meshward is unreachable the current SVID keeps
 * being served until it expires, and renewal is retried with capped exponential backoff.
 */
import { type Clock, systemClock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { counter, gauge, type Registry } from '../lib/metrics.ts';
import { chainsToBundle, joinPem, pemBlocks, readIssuedChain } from './chain.ts';
import { newKeyAndCsr } from './csr.ts';
import { AgentError } from './errors.ts';
import type { AgentIdentitySource, AgentSvid } from './index.ts';
import type { Upstream } from './upstream.ts';

export interface AgentIdentityOptions {
  upstream: Upstream;
  logger: Logger;
  registry: Registry;
  clock?: Clock;
  /** [0, 1); jitter and backoff spread. */
  random?: () => number;
  /** Renewal point as a fraction of the lifetime (Istio's grace ratio), plus up to `renewJitter`. */
  renewRatio?: number;
  renewJitter?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** How often the public bundle is polled for a rotation (with --meshward-api). */
  bundleRefreshMs?: number;
}

export type AgentState = 'ready' | 'degraded' | 'not_ready';

export interface AgentHealth {
  state: AgentState;
  spiffeId?: string;
  notAfter?: string;
  renewAt?: string;
  consecutiveFailures: number;
  lastError?: string;
  bundleSequence: number;
}

export interface AgentBundle {
  /** Counts local changes, from 1. */
  sequence: number;
  rootsPem: string;
}

interface Held {
  svid: AgentSvid;
  issuedAt: number;
  renewAt: number;
}

export class AgentIdentity implements AgentIdentitySource {
  readonly #o: AgentIdentityOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #listeners = new Set<(svid: AgentSvid) => void>();
  readonly #bundleListeners = new Set<(bundle: AgentBundle) => void>();
  readonly #firstWaiters: ((svid: AgentSvid) => void)[] = [];
  readonly #m;
  #held?: Held;
  #bundle: AgentBundle = { sequence: 0, rootsPem: '' };
  #failures = 0;
  #lastError?: string;
  #inFlight?: Promise<void>;
  #cancelRenew?: () => void;
  #cancelPoll?: () => void;
  #stopped = false;

  constructor(o: AgentIdentityOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#random = o.random ?? Math.random;
    this.#m = {
      notAfter: gauge(o.registry, 'meshward_agent_svid_not_after_seconds', 'notAfter of the X509-SVID the agent serves (Unix seconds).'),
      renewals: counter(o.registry, 'meshward_agent_renewals_total', 'X509-SVIDs obtained from meshward (first one and renewals).'),
      failures: counter(o.registry, 'meshward_agent_renewal_failures_total', 'Failed attempts to obtain an X509-SVID from meshward.'),
      bundleUpdates: counter(o.registry, 'meshward_agent_bundle_updates_total', 'Trust bundle changes the agent followed.'),
      degraded: gauge(o.registry, 'meshward_agent_degraded', '1 while the agent serves an SVID it could not renew (meshward unreachable or refusing).'),
      ready: gauge(o.registry, 'meshward_agent_ready', '1 while the agent holds a valid X509-SVID.'),
    };
  }

  /** Starts: asks for the first SVID now (retrying in the background) and polls the bundle. */
  start(): void {
    this.#attempt();
    if (this.#o.upstream.hasApi) this.#schedulePoll(0);
  }

  current(): AgentSvid | undefined {
    const held = this.#held;
    return held && held.svid.notAfter.getTime() > this.#clock.now() ? held.svid : undefined;
  }

  /** The current SVID, waiting for the first one up to `timeoutMs`. */
  async ready(timeoutMs = 30_000): Promise<AgentSvid> {
    const now = this.current();
    if (now) return now;
    if (this.#held) throw new AgentError('AGENT_NO_SVID', `the agent's SVID expired at ${this.#held.svid.notAfter.toISOString()} and meshward has not renewed it (${this.#lastError ?? 'no answer'})`);
    return new Promise((resolve, reject) => {
      const cancel = this.#clock.setTimer(timeoutMs, () => {
        const i = this.#firstWaiters.indexOf(done);
        if (i >= 0) this.#firstWaiters.splice(i, 1);
        reject(new AgentError('AGENT_NO_SVID', `no X509-SVID from meshward yet (${this.#lastError ?? 'waiting for an answer'})`));
      });
      const done = (svid: AgentSvid) => {
        cancel();
        resolve(svid);
      };
      this.#firstWaiters.push(done);
    });
  }

  subscribe(listener: (svid: AgentSvid) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  bundle(): AgentBundle {
    return this.#bundle;
  }

  onBundleChange(listener: (bundle: AgentBundle) => void): () => void {
    this.#bundleListeners.add(listener);
    return () => this.#bundleListeners.delete(listener);
  }

  health(): AgentHealth {
    const svid = this.current();
    const state: AgentState = !svid ? 'not_ready' : this.#failures > 0 ? 'degraded' : 'ready';
    return {
      state,
      ...(this.#held ? { spiffeId: this.#held.svid.spiffeId, notAfter: this.#held.svid.notAfter.toISOString(), renewAt: new Date(this.#held.renewAt).toISOString() } : {}),
      consecutiveFailures: this.#failures,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
      bundleSequence: this.#bundle.sequence,
    };
  }

  async fetchJwtSvid(audiences: string[]): Promise<{ spiffeId: string; token: string; expiresAt: Date }> {
    const text = await this.#o.upstream.request('POST', 'v1/svids/jwt', { audience: audiences }, this.#o.upstream.token());
    const body = JSON.parse(text) as { spiffeId: string; token: string; expiresAt: string };
    return { spiffeId: body.spiffeId, token: body.token, expiresAt: new Date(body.expiresAt) };
  }

  async jwtBundle(): Promise<{ trustDomain: string; jwks: Uint8Array }> {
    const text = await this.#o.upstream.request('GET', 'v1/bundle');
    const doc = JSON.parse(text) as { keys?: { use?: string }[] };
    const keys = (doc.keys ?? []).filter((k) => k.use === 'jwt-svid');
    const svid = this.#held?.svid ?? (await this.ready());
    return { trustDomain: svid.trustDomain, jwks: Buffer.from(JSON.stringify({ keys })) };
  }

  /** Asks for a new SVID now unless a request is already running (tests, a forced renewal). */
  renewNow(): Promise<void> {
    return this.#attempt();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelRenew?.();
    this.#cancelPoll?.();
  }

  #attempt(): Promise<void> {
    this.#inFlight ??= this.#obtain().then(
      () => {
        this.#failures = 0;
        this.#lastError = undefined;
      },
      (err: unknown) => this.#failed(err),
    ).finally(() => {
      this.#inFlight = undefined;
      this.#updateGauges();
    });
    return this.#inFlight;
  }

  async #obtain(): Promise<void> {
    const { privateKey, csrPem } = newKeyAndCsr();
    const requestedAt = this.#clock.now();
    const issued = readIssuedChain(await this.#o.upstream.createCertificate(csrPem), privateKey);
    if (this.#stopped) return;
    // A root we do not trust yet: the CA rotated. Fetch the published bundle, else trust what meshward sent.
    if (issued.rootPem && !chainsToBundle(issued.chainPem, this.#bundle.rootsPem)) {
      await this.#refreshBundle().catch(() => undefined);
      if (!chainsToBundle(issued.chainPem, this.#bundle.rootsPem)) this.#setBundle(joinPem([...pemBlocks(this.#bundle.rootsPem), issued.rootPem]), false);
    }
    if (!chainsToBundle(issued.chainPem, this.#bundle.rootsPem)) throw new AgentError('AGENT_UPSTREAM', 'the issued certificate does not chain to the trust bundle');
    const spiffeId = issued.spiffeId;
    const svid: AgentSvid = {
      spiffeId, certChainPem: issued.chainPem, privateKey, notAfter: new Date(issued.notAfter), bundlePem: this.#bundle.rootsPem,
      trustDomain: new URL(spiffeId).host,
    };
    const lifetime = Math.max(0, issued.notAfter - requestedAt);
    const ratio = Math.min(0.95, (this.#o.renewRatio ?? 0.5) + (this.#o.renewJitter ?? 0.1) * this.#random());
    this.#held = { svid, issuedAt: requestedAt, renewAt: requestedAt + ratio * lifetime };
    this.#m.renewals.inc();
    this.#o.logger.info({ spiffeId, notAfter: svid.notAfter.toISOString(), renewAt: new Date(this.#held.renewAt).toISOString() }, 'X509-SVID obtained from meshward');
    this.#scheduleRenew(this.#held.renewAt - this.#clock.now());
    for (const w of this.#firstWaiters.splice(0)) w(svid);
    this.#notify(svid);
  }

  #failed(err: unknown): void {
    if (this.#stopped) return;
    this.#failures++;
    this.#lastError = (err as Error).message;
    this.#m.failures.inc();
    const initial = this.#o.backoffInitialMs ?? 1000;
    const cap = this.#o.backoffMaxMs ?? 60_000;
    const base = Math.min(cap, initial * 2 ** Math.min(this.#failures - 1, 30));
    const delay = base * (0.8 + 0.4 * this.#random());
    this.#o.logger.warn({ err: { code: (err as { code?: string }).code, message: this.#lastError }, failures: this.#failures, retryInMs: Math.round(delay), serving: this.current()?.notAfter.toISOString() ?? null },
      this.current() ? 'SVID renewal failed; serving the current SVID until it expires' : 'no SVID from meshward yet; retrying');
    this.#scheduleRenew(delay);
  }

  #scheduleRenew(delayMs: number): void {
    this.#cancelRenew?.();
    if (this.#stopped) return;
    this.#cancelRenew = this.#clock.setTimer(Math.max(0, delayMs), () => {
      this.#cancelRenew = undefined;
      // The attempt that armed this timer may still be settling: renew after it, not never.
      void (this.#inFlight ?? Promise.resolve()).then(() => this.#attempt());
    });
  }

  #schedulePoll(delayMs: number): void {
    this.#cancelPoll = this.#clock.setTimer(delayMs, () => {
      this.#refreshBundle().catch((err: unknown) => this.#o.logger.debug({ err: (err as Error).message }, 'bundle poll failed'))
        .finally(() => {
          if (!this.#stopped) this.#schedulePoll(this.#o.bundleRefreshMs ?? 60_000);
        });
    });
  }

  async #refreshBundle(): Promise<void> {
    if (!this.#o.upstream.hasApi) return;
    const roots = pemBlocks(await this.#o.upstream.request('GET', 'v1/bundle.pem'));
    if (roots.length === 0) throw new AgentError('AGENT_UPSTREAM', 'the published bundle holds no certificate');
    if (!this.#stopped) this.#setBundle(joinPem(roots), true);
  }

  #setBundle(rootsPem: string, notify: boolean): void {
    if (rootsPem === this.#bundle.rootsPem) return;
    this.#bundle = { sequence: this.#bundle.sequence + 1, rootsPem };
    this.#m.bundleUpdates.inc();
    if (this.#held) this.#held = { ...this.#held, svid: { ...this.#held.svid, bundlePem: rootsPem } };
    this.#o.logger.info({ sequence: this.#bundle.sequence, roots: pemBlocks(rootsPem).length }, 'trust bundle updated');
    if (!notify) return;
    const svid = this.current();
    if (svid) this.#notify(svid);
    else for (const l of [...this.#bundleListeners]) l(this.#bundle);
  }

  #notify(svid: AgentSvid): void {
    for (const l of [...this.#bundleListeners]) l(this.#bundle);
    for (const l of [...this.#listeners]) l(svid);
    this.#updateGauges();
  }

  #updateGauges(): void {
    const h = this.health();
    this.#m.ready.set(h.state === 'not_ready' ? 0 : 1);
    this.#m.degraded.set(h.state === 'degraded' ? 1 : 0);
    if (this.#held) this.#m.notAfter.set(Math.floor(this.#held.svid.notAfter.getTime() / 1000));
  }
}
