/**
 * One WAL follower per shard with loaded segments: tails the shard's WAL
 * subject and flags the rows that delete operations remove from the loaded
 * segments. `appliedSeq` is how far the shard is applied here; a read with a
 * guarantee timestamp waits until it reaches the shard owner's position.
 *
 * Which deletes reach a segment S (each is idempotent, so overlap is fine):
 *  - delta logs committed by the shard checkpoint C read at attach time
 *    (applied by the loader), which hold every delete of S's rows at or
 *    below C;
 *  - WAL entries in (C, appliedSeq], read once for S alone while the
 *    follower is paused (catch-up);
 *  - every later entry, as the follower applies it.
 * A delete at or below S's own `walTo` is never applied to S: S was built
 * from that range with those deletes already in it (a key deleted and
 * re-inserted there lives on in S as the new row).
 * A delete naming a compaction source applies to the loaded segment that
 * replaced it (the WAL names the segment that held the key when it was
 * written).
 */
import { ConsistencyTimeout } from "../../schemas/errors.ts";
import { log } from "../../runtime/log.ts";
import type { Wal } from "../../runtime/wal.ts";
import { unpackWalEntry, type WalEntry, type WalOp } from "../streamingnode/protocol.ts";
import type { LoadedSegment } from "./segment.ts";

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

export class ShardFollower {
  /** Every WAL entry of the shard up to here is applied to every attached segment. */
  private applied: number;
  private readonly segments = new Map<number, LoadedSegment>();
  /** Compaction source id -> attached segments that replaced it. */
  private readonly aliases = new Map<number, Set<LoadedSegment>>();
  private readonly pendingParts = new Map<string, WalEntry[]>();
  private readonly waiters = new Set<Waiter>();
  private chain: Promise<void> = Promise.resolve();
  private stopFollow: (() => void) | undefined;
  private deletesApplied = 0;

  constructor(
    readonly collectionId: number,
    readonly shard: number,
    private readonly wal: Wal,
    private readonly subject: string,
    /** Position already covered by delta logs (the shard checkpoint when the follower starts). */
    startSeq: number,
  ) {
    this.applied = startSeq;
  }

  get appliedSeq(): number {
    return this.applied;
  }
  get size(): number {
    return this.segments.size;
  }
  get deletes(): number {
    return this.deletesApplied;
  }

  start() {
    if (this.stopFollow) return;
    this.stopFollow = this.wal.follow(this.subject, this.applied + 1, (seq, bytes) => this.serialized(() => this.applyEntry(seq, bytes)));
  }

  stop() {
    this.stopFollow?.();
    this.stopFollow = undefined;
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new ConsistencyTimeout({ message: `shard ${this.collectionId}/${this.shard} is no longer followed here` }));
    }
    this.waiters.clear();
  }

  /** Run `fn` with no WAL entry being applied meanwhile. */
  private serialized<T>(fn: () => Promise<T> | T): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  /**
   * Start applying deletes to `seg`, whose delta logs are applied up to
   * `checkpointSeq`: first replays (checkpointSeq, appliedSeq] for it alone.
   */
  attach(seg: LoadedSegment, checkpointSeq: number): Promise<void> {
    return this.serialized(async () => {
      if (this.applied > checkpointSeq) {
        const parts = new Map<string, WalEntry[]>();
        await this.wal.read(this.subject, checkpointSeq + 1, this.applied, (seq, bytes) => {
          const d = this.decode(seq, bytes, parts);
          if (d) this.applyOps(d.ops, d.ts, seq, (id) => (id === seg.segmentId || seg.record.compactedFrom?.includes(id) ? [seg] : []));
        });
      }
      this.segments.set(seg.segmentId, seg);
      for (const src of seg.record.compactedFrom ?? []) {
        const s = this.aliases.get(src) ?? new Set();
        s.add(seg);
        this.aliases.set(src, s);
      }
    });
  }

  detach(segmentId: number) {
    const seg = this.segments.get(segmentId);
    if (!seg) return;
    this.segments.delete(segmentId);
    for (const src of seg.record.compactedFrom ?? []) {
      const s = this.aliases.get(src);
      s?.delete(seg);
      if (s?.size === 0) this.aliases.delete(src);
    }
  }

  /** Resolves once appliedSeq >= seq; ConsistencyTimeout at `deadlineMs`. */
  waitApplied(seq: number, deadlineMs: number): Promise<void> {
    if (this.applied >= seq) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        seq,
        resolve,
        reject,
        timer: setTimeout(
          () => {
            this.waiters.delete(w);
            reject(
              new ConsistencyTimeout({
                message: `query node applied shard ${this.collectionId}/${this.shard} up to WAL position ${this.applied}, the read needs ${seq}`,
              }),
            );
          },
          Math.max(0, deadlineMs - Date.now()),
        ),
      };
      this.waiters.add(w);
    });
  }

  /** The entry's ops once its txn is complete (undefined while parts are missing or if undecodable). */
  private decode(seq: number, bytes: Uint8Array, parts: Map<string, WalEntry[]>): { ops: WalOp[]; ts: bigint } | undefined {
    let entry: WalEntry;
    try {
      entry = unpackWalEntry(bytes);
    } catch (e) {
      log.error(`querynode: undecodable WAL entry ${seq} of shard ${this.collectionId}/${this.shard} skipped`, e);
      return undefined;
    }
    if (!entry.part) return { ops: entry.ops, ts: entry.ts };
    const got = parts.get(entry.part.txn) ?? [];
    got.push(entry);
    if (got.length < entry.part.count) {
      parts.set(entry.part.txn, got);
      return undefined;
    }
    parts.delete(entry.part.txn);
    got.sort((a, b) => a.part!.index - b.part!.index);
    return { ops: got.flatMap((p) => p.ops), ts: entry.ts };
  }

  private applyOps(ops: readonly WalOp[], ts: bigint, seq: number, targets: (segmentId: number) => Iterable<LoadedSegment>) {
    for (const op of ops) {
      if (op.op !== "delete") continue;
      for (let i = 0; i < op.pks.length; i++) {
        const segId = op.segs?.[i];
        if (segId === undefined || segId < 0) continue;
        for (const seg of targets(segId)) if (seq > seg.record.walTo) this.deletesApplied += seg.deletePk(op.pks[i]!, ts);
      }
    }
  }

  private applyEntry(seq: number, bytes: Uint8Array) {
    if (seq <= this.applied) return;
    const d = this.decode(seq, bytes, this.pendingParts);
    if (d)
      this.applyOps(d.ops, d.ts, seq, (id) => {
        const direct = this.segments.get(id);
        const via = this.aliases.get(id);
        if (!via) return direct ? [direct] : [];
        return direct ? [direct, ...via] : via;
      });
    this.applied = seq;
    for (const w of this.waiters) {
      if (w.seq <= seq) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }
}
