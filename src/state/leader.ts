/**
 * Leadership among replicas: a session-level PostgreSQL advisory lock (`pg_try_advisory_lock`) held
 * on a dedicated connection. Whoever holds it leads; a lost connection (a killed replica, a network
 * cut) releases it in PostgreSQL, and the holder gives up leading as soon as it notices (its
 * connection errors or a probe fails). Non-leaders retry every `intervalMs`.
 */
import type pg from 'pg';
import type { Logger } from '../lib/logger.ts';

export interface LeadershipOptions {
  /** A fresh dedicated connection (PostgresStateStore.dedicatedClient). */
  connect(): Promise<pg.Client>;
  /** Lock name (hashed to the advisory lock key). */
  name: string;
  logger: Logger;
  intervalMs?: number;
  onChange(leader: boolean): void;
}

export class Leadership {
  readonly #o: LeadershipOptions;
  #client?: pg.Client;
  #leader = false;
  #timer?: NodeJS.Timeout;
  #stopped = false;
  #busy = false;

  constructor(o: LeadershipOptions) {
    this.#o = o;
  }

  get leader(): boolean {
    return this.#leader;
  }

  async start(): Promise<void> {
    await this.#round();
    this.#timer = setInterval(() => void this.#round(), this.#o.intervalMs ?? 2000);
    this.#timer.unref();
  }

  #set(leader: boolean): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    this.#o.logger.info({ lock: this.#o.name }, leader ? 'became the leader (advisory lock held)' : 'no longer the leader');
    this.#o.onChange(leader);
  }

  #drop(): void {
    const client = this.#client;
    this.#client = undefined;
    client?.end().catch(() => {});
    this.#set(false);
  }

  /** Leader: probes its connection. Otherwise: tries to take the lock. */
  async #round(): Promise<void> {
    if (this.#busy || this.#stopped) return;
    this.#busy = true;
    try {
      if (!this.#client) {
        const client = await this.#o.connect();
        client.on('error', () => this.#drop());
        client.on('end', () => {
          if (this.#client === client) this.#drop();
        });
        this.#client = client;
      }
      if (this.#leader) {
        await this.#client.query('SELECT 1');
        return;
      }
      const r = await this.#client.query('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [this.#o.name]);
      if (r.rows[0]?.ok === true && !this.#stopped) this.#set(true);
    } catch (err) {
      if (this.#leader) this.#o.logger.warn({ err }, 'lost the connection that holds leadership');
      this.#drop();
    } finally {
      this.#busy = false;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    this.#set(false);
    await client?.end().catch(() => {});
  }
}
