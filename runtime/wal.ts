/**
 * The write-ahead log: a small interface over the NATSVEC_WAL JetStream
 * stream, one subject per shard. Appends are fenced with the expected last
 * subject sequence, so a stale owner's append fails instead of interleaving
 * with the new owner's (invariant 5).
 */
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";

export class WalFenced extends Error {}

/**
 * Entries asked for per pull while reading the WAL. Entries are up to the max payload (1 MB)
 * each; a pull of hundreds of them would overrun the connection's 64 MB pending limit, and
 * nats-server would then drop messages as a slow consumer and stall the read.
 */
const WAL_FETCH_MESSAGES = 32;

export interface Wal {
  /** Sequence of the last entry on the subject, 0 if none. */
  lastSeq(subject: string): Promise<number>;
  /** Append iff the subject's last sequence is still `expectLastSeq`; returns the new sequence. */
  append(subject: string, bytes: Uint8Array, expectLastSeq: number): Promise<number>;
  /** Deliver entries with fromSeq <= seq <= untilSeq in order. */
  read(subject: string, fromSeq: number, untilSeq: number, onEntry: (seq: number, bytes: Uint8Array) => void): Promise<void>;
  /** Remove every entry of the subjects under `filter` (a dropped collection). */
  purge(filter: string): Promise<void>;
  /** Remove a shard's entries below `seq` (they are in flushed segments). */
  trim(subject: string, belowSeq: number): Promise<void>;
  /**
   * Deliver entries from `fromSeq` on, in order, as they are appended, until the returned
   * stop function is called. `onEntry` may be async: the next entry waits for it.
   */
  follow(subject: string, fromSeq: number, onEntry: (seq: number, bytes: Uint8Array) => void | Promise<void>): () => void;
}

export class JetStreamWal implements Wal {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
  ) {}

  async lastSeq(subject: string): Promise<number> {
    const m = await this.jsm.streams.getMessage(this.stream, { last_by_subj: subject });
    return m?.seq ?? 0;
  }

  async append(subject: string, bytes: Uint8Array, expectLastSeq: number): Promise<number> {
    try {
      const ack = await this.js.publish(subject, bytes, { expect: { lastSubjectSequence: expectLastSeq }, timeout: 10_000 });
      return ack.seq;
    } catch (e) {
      const msg = (e as Error).message ?? "";
      if (msg.includes("wrong last sequence")) throw new WalFenced(`append to ${subject} fenced: ${msg}`);
      throw e;
    }
  }

  async read(subject: string, fromSeq: number, untilSeq: number, onEntry: (seq: number, bytes: Uint8Array) => void): Promise<void> {
    if (untilSeq < fromSeq) return;
    const info = await this.jsm.consumers.add(this.stream, {
      filter_subject: subject,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
      inactive_threshold: 60_000_000_000, // ns: the server removes it if we die mid-read
      mem_storage: true,
    });
    try {
      const consumer = await this.js.consumers.get(this.stream, info.name);
      for (;;) {
        let done = false;
        const batch = await consumer.fetch({ max_messages: WAL_FETCH_MESSAGES, expires: 5_000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          if (m.seq > untilSeq) {
            done = true;
            break;
          }
          onEntry(m.seq, m.data);
          if (m.seq === untilSeq) {
            done = true;
            break;
          }
        }
        if (done) return;
        if (got === 0) {
          // Nothing more arrived: entries up to untilSeq were purged or never existed.
          return;
        }
      }
    } finally {
      await this.jsm.consumers.delete(this.stream, info.name).catch(() => undefined);
    }
  }

  async purge(filter: string): Promise<void> {
    await this.jsm.streams.purge(this.stream, { filter });
  }

  async trim(subject: string, belowSeq: number): Promise<void> {
    if (belowSeq <= 1) return;
    await this.jsm.streams.purge(this.stream, { filter: subject, seq: belowSeq });
  }

  follow(subject: string, fromSeq: number, onEntry: (seq: number, bytes: Uint8Array) => void | Promise<void>): () => void {
    let stopped = false;
    let next = Math.max(1, fromSeq);
    const loop = async () => {
      while (!stopped) {
        let name: string | undefined;
        try {
          const info = await this.jsm.consumers.add(this.stream, {
            filter_subject: subject,
            ack_policy: AckPolicy.None,
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: next,
            inactive_threshold: 60_000_000_000,
            mem_storage: true,
          });
          name = info.name;
          const consumer = await this.js.consumers.get(this.stream, info.name);
          while (!stopped) {
            const batch = await consumer.fetch({ max_messages: WAL_FETCH_MESSAGES, expires: 1_000 });
            for await (const m of batch) {
              if (stopped) break;
              if (m.seq < next) continue;
              await onEntry(m.seq, m.data);
              next = m.seq + 1;
            }
          }
        } catch {
          // Connection trouble or a purged start position: start a new consumer where we were.
          if (!stopped) await new Promise((r) => setTimeout(r, 250));
        } finally {
          if (name) await this.jsm.consumers.delete(this.stream, name).catch(() => undefined);
        }
      }
    };
    void loop();
    return () => {
      stopped = true;
    };
  }
}
