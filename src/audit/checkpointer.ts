/**
 * The checkpoint shell: every `everyRecords` records written or every `intervalMs` (checked once
 * a second at most), and once at graceful stop, signs the store's head and publishes it three
 * ways: the files in `<data>/audit/`, the auditor API (`recent()`), and one info log line. A head
 * that has not moved since the last checkpoint is not signed again.
 *
 * At start it compares the store with the last published checkpoint and logs an error naming
 * the missing records (the server keeps serving: availability is the operator's call).
 */
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { counter, gauge, type Registry } from '../lib/metrics.ts';
import { type SignedCheckpoint, signCheckpoint } from './checkpoint.ts';
import { publishCheckpointFiles, readLatestCheckpoint } from './checkpoint-files.ts';
import type { CheckpointKey } from './checkpoint-key.ts';
import { verifyCheckpoints } from './checkpoint-verify.ts';
import type { AuditStore } from './store.ts';

export interface CheckpointSettings {
  everyRecords: number;
  intervalMs: number;
}

export interface CheckpointerOptions {
  store: Pick<AuditStore, 'head' | 'anchor' | 'scan'>;
  key: CheckpointKey;
  /** Where the files go (`<data>/audit`). */
  dir: string;
  logger: Logger;
  registry: Registry;
  clock: Clock;
  settings: () => CheckpointSettings;
  /** Records this process has written so far (AuditLog stats). */
  written: () => number;
}

/** Checkpoints kept in memory for the API. */
const RECENT = 100;
const MAX_TICK_MS = 1000;

export class Checkpointer {
  readonly #o: CheckpointerOptions;
  readonly #logger: Logger;
  #recent: SignedCheckpoint[] = [];
  #last?: { seq: number; hash: string };
  #writtenAtLast = 0;
  #lastAt: number;
  #cancelTimer?: () => void;
  #busy?: Promise<unknown>;
  #stopped = false;
  readonly #metrics;

  constructor(options: CheckpointerOptions) {
    this.#o = options;
    this.#logger = options.logger.child({ component: 'audit' });
    this.#lastAt = options.clock.now();
    this.#metrics = {
      published: counter(options.registry, 'meshward_audit_checkpoints_total', 'Signed audit checkpoints, by result (published, failed).', ['result']),
      seq: gauge(options.registry, 'meshward_audit_checkpoint_seq', 'seq of the newest published audit checkpoint.'),
    };
  }

  /** Checks the store against the last published checkpoint, then arms the timer. */
  async start(): Promise<void> {
    await this.#checkAgainstLatest();
    this.#arm();
  }

  /** Newest first. */
  recent(): SignedCheckpoint[] {
    return [...this.#recent].reverse();
  }

  /** Signs and publishes the head now, unless it is the one last checkpointed. */
  checkpoint(): Promise<SignedCheckpoint | undefined> {
    const run = (this.#busy ?? Promise.resolve()).catch(() => {}).then(() => this.#checkpointOnce());
    this.#busy = run;
    return run;
  }

  /** Stops the timer and signs a final checkpoint (call after the log flushed, before the store closes). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelTimer?.();
    try {
      await this.checkpoint();
    } catch {
      // Logged and counted by #checkpointOnce.
    }
  }

  #arm(): void {
    if (this.#stopped) return;
    const tick = Math.max(1, Math.min(MAX_TICK_MS, this.#o.settings().intervalMs));
    this.#cancelTimer = this.#o.clock.setTimer(tick, () => {
      this.#cancelTimer = undefined;
      const run = this.#due() ? this.checkpoint().catch(() => {}) : Promise.resolve();
      void run.then(() => this.#arm());
    });
  }

  #due(): boolean {
    const { everyRecords, intervalMs } = this.#o.settings();
    return this.#o.written() - this.#writtenAtLast >= everyRecords || this.#o.clock.now() - this.#lastAt >= intervalMs;
  }

  async #checkpointOnce(): Promise<SignedCheckpoint | undefined> {
    const written = this.#o.written();
    const now = this.#o.clock.now();
    try {
      const head = await this.#o.store.head();
      this.#writtenAtLast = written;
      this.#lastAt = now;
      if (this.#last && this.#last.seq === head.seq && this.#last.hash === head.hash) return undefined;
      const cp = signCheckpoint(this.#o.key.privateKey, { seq: head.seq, hash: head.hash, time: now }, this.#o.key.keyId);
      await publishCheckpointFiles(this.#o.dir, cp);
      this.#last = head;
      this.#recent.push(cp);
      if (this.#recent.length > RECENT) this.#recent.shift();
      this.#metrics.published.inc({ result: 'published' });
      this.#metrics.seq.set(cp.seq);
      this.#logger.info({ checkpoint: { seq: cp.seq, hash: cp.hash, time: cp.time, keyId: cp.keyId, signature: cp.signature } }, 'audit checkpoint signed');
      return cp;
    } catch (err) {
      this.#metrics.published.inc({ result: 'failed' });
      this.#logger.error({ err }, 'audit checkpoint could not be signed or published');
      throw err;
    }
  }

  async #checkAgainstLatest(): Promise<void> {
    let latest: ReturnType<typeof readLatestCheckpoint>;
    try {
      latest = readLatestCheckpoint(this.#o.dir);
      if (!latest) return;
      if (latest.checkpoint.keyId !== this.#o.key.keyId) {
        this.#logger.warn({ keyId: latest.checkpoint.keyId, ownKeyId: this.#o.key.keyId }, 'the last published audit checkpoint was signed by another key; not compared');
        return;
      }
      const report = await verifyCheckpoints(this.#o.store, [latest], new Map([[this.#o.key.keyId, this.#o.key.publicKey]]));
      this.#last = { seq: latest.checkpoint.seq, hash: latest.checkpoint.hash };
      // The API serves it until this process signs its own (the signature was just checked).
      this.#recent.push(latest.checkpoint);
      for (const f of report.findings) this.#logger.error({ fromSeq: f.fromSeq, toSeq: f.toSeq, checkpoint: f.checkpoint }, `audit records missing since the last checkpoint: ${f.message}`);
    } catch (err) {
      this.#logger.error({ err }, 'the last published audit checkpoint could not be checked');
    }
  }
}
