import { describe, expect, it } from "vitest";
import { encodeBatch } from "../../engine/columns.ts";
import { rowsToBatch } from "../../engine/rows.ts";
import { fld, makeSchema } from "../../engine/testkit.ts";
import { CollectionId, PartitionId } from "../../schemas/ids.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { Wal } from "../../runtime/wal.ts";
import { Shard } from "./shard.ts";

const schema = makeSchema([fld("id", "Int64", { isPrimary: true }), fld("vec", "FloatVector", { dim: 2 })], false);
const record: CollectionRecord = {
  id: CollectionId(1),
  db: "default",
  name: "c",
  description: "",
  schema,
  shardsNum: 1,
  partitions: [{ partitionId: PartitionId(10), name: "_default", createdAtMs: 0 }],
  indexes: [],
  properties: {},
  consistencyLevel: "Strong",
  createdAtMs: 0,
  createdTs: 0n,
};

/**
 * The shard's log in memory, for the shard alone (its behaviour over JetStream is covered by the
 * integration tests): appends are acknowledged when the test says so, or fail when it says so.
 */
class HeldWal implements Wal {
  readonly entries: Uint8Array[] = [];
  private held: { settle: (ok: boolean) => void }[] = [];
  hold = true;
  async open() {}
  async lastSeq() {
    return this.entries.length;
  }
  append(_subject: string, bytes: Uint8Array | readonly Uint8Array[], expectLastSeq: number): Promise<number> {
    if (expectLastSeq !== this.entries.length) return Promise.reject(new Error("wrong last sequence"));
    const copy = bytes instanceof Uint8Array ? bytes.slice() : new Uint8Array(Buffer.concat(bytes)); // the shard may reuse its buffers once the append is acknowledged
    const ack = (ok: boolean) => (ok ? (this.entries.push(copy), Promise.resolve(this.entries.length)) : Promise.reject(new Error("ack lost")));
    if (!this.hold) return ack(true);
    return new Promise((resolve, reject) => this.held.push({ settle: (ok) => ack(ok).then(resolve, reject) }));
  }
  get pending() {
    return this.held.length;
  }
  release(ok = true) {
    const h = this.held;
    this.held = [];
    for (const x of h) x.settle(ok);
  }
  async read(_s: string, from: number, until: number, onEntry: (seq: number, bytes: Uint8Array) => void) {
    for (let seq = Math.max(1, from); seq <= Math.min(until, this.entries.length); seq++) onEntry(seq, this.entries[seq - 1]!);
  }
  async drop() {}
  async trim() {}
  follow() {
    return () => {};
  }
}

const shardOn = async (wal: HeldWal) => {
  let ts = 100n;
  let segmentId = 1000;
  let fenced = 0;
  const shard = new Shard(record, 0, {
    wal,
    walSubject: "wal.1.0",
    tso: async () => ++ts,
    allocSegmentId: async () => ++segmentId,
    publishFlush: async () => {},
    loadFlushed: async () => ({ checkpoint: 0, segments: [] }),
    maxEntryBytes: 1 << 20,
    consistencyWaitMs: 5_000,
    sealPolicy: { maxRows: 1e9, maxBytes: 1e12, idleMs: 1e9 },
    onFenced: () => fenced++,
  });
  await shard.recover();
  return { shard, fenced: () => fenced };
};

const insert = (from: number, count: number) => ({
  op: "insert" as const,
  partitionId: 10,
  batch: encodeBatch(
    rowsToBatch(
      schema,
      Array.from({ length: count }, (_, i) => ({ id: from + i, vec: [from + i, 1] })),
      { mode: "insert" },
    ),
  ),
});

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(cond()).toBe(true);
};

const read = { collectionId: 1, outputFields: ["id"] };

describe("Shard: rows copied in while their WAL append is in flight", () => {
  // Proves the rows a shard stages during its append stay out of every read (query, count, get,
  // search) until the append is acknowledged, and are all there after.
  it("are invisible until the append is acknowledged", async () => {
    const wal = new HeldWal();
    const { shard } = await shardOn(wal);
    wal.hold = false;
    await shard.write(insert(0, 3));
    wal.hold = true;
    const w = shard.write(insert(3, 4));
    await until(() => wal.pending === 1);
    await new Promise((r) => setTimeout(r, 5)); // the shard stages the rows meanwhile
    const ids = async () => (await shard.query({ ...read, k: 100 })).pks;
    expect(await ids()).toEqual([0n, 1n, 2n]);
    expect((await shard.query({ ...read, k: 100, countOnly: true })).count).toBe(3);
    expect((await shard.get({ ...read, pks: [3n, 4n] })).pks).toEqual([]);
    const hits = await shard.search({ ...read, field: "vec", metric: "L2", queries: [new Float32Array([5, 1])], k: 10 });
    expect(hits.results[0]!.map((h) => h.pk)).toEqual([2n, 1n, 0n]);
    wal.release();
    expect((await w).count).toBe(4);
    expect(await ids()).toEqual([0n, 1n, 2n, 3n, 4n, 5n, 6n]);
    expect((await shard.get({ ...read, pks: [3n, 6n] })).pks).toEqual([3n, 6n]);
  });

  // Proves a failed append leaves no staged row visible: the write fails, the shard gives itself up
  // (its endpoints go), what it still holds shows only acknowledged rows, and so does a shard rebuilt from the log.
  it("vanish with a failed append", async () => {
    const wal = new HeldWal();
    const { shard, fenced } = await shardOn(wal);
    wal.hold = false;
    await shard.write(insert(0, 2));
    wal.hold = true;
    const w = shard.write(insert(2, 5));
    await until(() => wal.pending === 1);
    wal.release(false);
    await expect(w).rejects.toMatchObject({ message: expect.stringContaining("outcome unknown") });
    expect(fenced()).toBe(1);
    expect((await shard.query({ ...read, k: 100 })).pks).toEqual([0n, 1n]);
    wal.hold = false;
    const { shard: next } = await shardOn(wal);
    expect((await next.query({ ...read, k: 100 })).pks).toEqual([0n, 1n]);
  });
});
