/**
 * The write-ahead log: a small interface over JetStream, one stream per shard
 * (`NATSVEC_WAL_<collectionId>_<shard>`, its single subject
 * `<root>.wal.<collectionId>.<shard>`). Appends are fenced with the stream's
 * expected last sequence, so a stale owner's append fails instead of
 * interleaving with the new owner's (invariant 5). The stream-level check is
 * an in-memory compare in nats-server; the subject-level one a single shared
 * stream needed loads the subject's last message on every append (2-8 ms per
 * 540 KB entry on nats-server 2.9, growing with the stream).
 */
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { WireNoResponders, type DataWire } from "./wire.ts";

export class WalFenced extends Error {}

/** How long an append waits for JetStream's acknowledgement. */
const APPEND_TIMEOUT_MS = 10_000;

/** nats-server's answer for a stream that does not exist (JetStream error code 10059). */
export const isStreamNotFound = (e: unknown): boolean => /stream not found/i.test((e as Error)?.message ?? "");

/**
 * Entries asked for per pull while reading the WAL. Entries are up to the max payload (1 MB)
 * each; a pull of hundreds of them would overrun the connection's 64 MB pending limit, and
 * nats-server would then drop messages as a slow consumer and stall the read.
 */
const WAL_FETCH_MESSAGES = 32;

export interface Wal {
  /** Create the shard's log if it does not exist yet (idempotent; its owner calls it before lastSeq). */
  open(subject: string): Promise<void>;
  /**
   * Sequence of the shard's last append, 0 if none (trimmed entries count: the next append
   * expects this, whatever was trimmed).
   */
  lastSeq(subject: string): Promise<number>;
  /**
   * Append iff the shard's last sequence is still `expectLastSeq`; returns the new sequence. Parts
   * are one message, written without joining them where the connection allows (the data wire).
   */
  append(subject: string, bytes: Uint8Array | readonly Uint8Array[], expectLastSeq: number): Promise<number>;
  /** Deliver entries with fromSeq <= seq <= untilSeq in order. */
  read(subject: string, fromSeq: number, untilSeq: number, onEntry: (seq: number, bytes: Uint8Array) => void): Promise<void>;
  /** Delete the logs of every shard whose subject is under `filter` (a dropped collection). */
  drop(filter: string): Promise<void>;
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
    /** The stream of a shard's subject (undefined: not a WAL subject). */
    private readonly streamOf: (subject: string) => string | undefined,
    /** Create a shard's stream holding `subject` (idempotent). */
    private readonly create: (stream: string, subject: string) => Promise<void>,
    /** Appends go over the data wire when there is one (runtime/wire.ts), else through nats.js. */
    private readonly wire?: DataWire,
  ) {}

  private stream(subject: string): string {
    const s = this.streamOf(subject);
    if (s === undefined) throw new Error(`not a WAL subject: ${subject}`);
    return s;
  }

  async open(subject: string): Promise<void> {
    await this.create(this.stream(subject), subject);
  }

  async lastSeq(subject: string): Promise<number> {
    try {
      return (await this.jsm.streams.info(this.stream(subject))).state.last_seq;
    } catch (e) {
      if (isStreamNotFound(e)) return 0;
      throw e;
    }
  }

  async append(subject: string, bytes: Uint8Array | readonly Uint8Array[], expectLastSeq: number): Promise<number> {
    const stream = this.stream(subject);
    if (this.wire) return this.appendOnWire(this.wire, stream, subject, bytes, expectLastSeq);
    try {
      const ack = await this.js.publish(subject, bytes instanceof Uint8Array ? bytes : Buffer.concat(bytes), { expect: { streamName: stream, lastSequence: expectLastSeq }, timeout: APPEND_TIMEOUT_MS });
      return ack.seq;
    } catch (e) {
      const msg = (e as Error).message ?? "";
      if (msg.includes("wrong last sequence")) throw new WalFenced(`append to ${subject} fenced: ${msg}`);
      throw e;
    }
  }

  /** A JetStream publish spoken directly: the stream's expectations as headers, its PubAck (JSON) as the reply. */
  private async appendOnWire(wire: DataWire, stream: string, subject: string, bytes: Uint8Array | readonly Uint8Array[], expectLastSeq: number): Promise<number> {
    let reply;
    try {
      reply = await wire.request(subject, bytes, {
        headers: { "Nats-Expected-Stream": stream, "Nats-Expected-Last-Sequence": String(expectLastSeq) },
        timeoutMs: APPEND_TIMEOUT_MS,
      });
    } catch (e) {
      if (e instanceof WireNoResponders) throw new Error(`append to ${subject}: stream not found (no JetStream stream listens on the subject)`);
      throw e;
    }
    let ack: { stream?: string; seq?: number; error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = JSON.parse(Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength).toString("utf8"));
    } catch {
      throw new Error(`append to ${subject}: unreadable acknowledgement`);
    }
    if (ack.error) {
      const msg = ack.error.description ?? `error ${ack.error.err_code ?? ack.error.code}`;
      if (msg.includes("wrong last sequence")) throw new WalFenced(`append to ${subject} fenced: ${msg}`);
      throw new Error(`append to ${subject} failed: ${msg}`);
    }
    if (typeof ack.seq !== "number" || ack.stream !== stream) throw new Error(`append to ${subject}: unexpected acknowledgement ${JSON.stringify(ack)}`);
    return ack.seq;
  }

  async read(subject: string, fromSeq: number, untilSeq: number, onEntry: (seq: number, bytes: Uint8Array) => void): Promise<void> {
    if (untilSeq < fromSeq) return;
    const stream = this.stream(subject);
    const info = await this.jsm.consumers.add(stream, {
      filter_subject: subject,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
      inactive_threshold: 60_000_000_000, // ns: the server removes it if we die mid-read
      mem_storage: true,
    });
    try {
      const consumer = await this.js.consumers.get(stream, info.name);
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
      await this.jsm.consumers.delete(stream, info.name).catch(() => undefined);
    }
  }

  async drop(filter: string): Promise<void> {
    // The streams whose subjects fall under the filter: each a shard's log.
    const streams: string[] = [];
    for await (const name of this.jsm.streams.names(filter)) streams.push(name);
    for (const name of streams) {
      await this.jsm.streams.delete(name).catch((e) => {
        if (!isStreamNotFound(e)) throw e;
      });
    }
  }

  async trim(subject: string, belowSeq: number): Promise<void> {
    if (belowSeq <= 1) return;
    try {
      await this.jsm.streams.purge(this.stream(subject), { seq: belowSeq });
    } catch (e) {
      if (!isStreamNotFound(e)) throw e;
    }
  }

  follow(subject: string, fromSeq: number, onEntry: (seq: number, bytes: Uint8Array) => void | Promise<void>): () => void {
    const stream = this.stream(subject);
    let stopped = false;
    let next = Math.max(1, fromSeq);
    const loop = async () => {
      while (!stopped) {
        let name: string | undefined;
        try {
          const info = await this.jsm.consumers.add(stream, {
            filter_subject: subject,
            ack_policy: AckPolicy.None,
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: next,
            inactive_threshold: 60_000_000_000,
            mem_storage: true,
          });
          name = info.name;
          const consumer = await this.js.consumers.get(stream, info.name);
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
          if (name) await this.jsm.consumers.delete(stream, name).catch(() => undefined);
        }
      }
    };
    void loop();
    return () => {
      stopped = true;
    };
  }
}
