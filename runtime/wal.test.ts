import { beforeAll, describe, expect, it } from "vitest";
import { STREAM_WAL } from "../schemas/names.ts";
import { useStorage } from "../test/harness/storage.ts";
import { defaultConfig, openNats, type NatsHandles } from "./services.ts";
import { openStorage, type Storage } from "./storage.ts";
import { WalFenced } from "./wal.ts";

const env = useStorage();
let h: NatsHandles;
let storage: Storage;
beforeAll(() => {
  ({ h, storage } = env.get());
});

describe("JetStream WAL", () => {
  // Appends are fenced by the expected last sequence: a writer with a stale view cannot append (invariant 5).
  it("fences a stale writer", async () => {
    const subject = h.names.wal(900, 0);
    expect(await storage.wal.lastSeq(subject)).toBe(0);
    await storage.wal.open(subject);
    await storage.wal.open(subject); // idempotent
    expect(await storage.wal.lastSeq(subject)).toBe(0);
    const s1 = await storage.wal.append(subject, new Uint8Array([1]), 0);
    const s2 = await storage.wal.append(subject, new Uint8Array([2]), s1);
    await expect(storage.wal.append(subject, new Uint8Array([3]), s1)).rejects.toBeInstanceOf(WalFenced);
    await expect(storage.wal.append(subject, new Uint8Array([3]), 0)).rejects.toBeInstanceOf(WalFenced);
    expect(await storage.wal.lastSeq(subject)).toBe(s2);
  });

  // Reads return exactly the shard's entries in order, from any start, ignoring other shards' subjects.
  it("reads one subject in order from a position", async () => {
    const a = h.names.wal(901, 0);
    const b = h.names.wal(901, 1);
    let la = 0;
    let lb = 0;
    await storage.wal.open(a);
    await storage.wal.open(b);
    for (let i = 0; i < 600; i++) {
      la = await storage.wal.append(a, new Uint8Array([i % 256, 0]), la);
      if (i % 3 === 0) lb = await storage.wal.append(b, new Uint8Array([i % 256, 1]), lb);
    }
    const seen: number[] = [];
    await storage.wal.read(a, 1, la, (_seq, bytes) => seen.push(bytes[0]!));
    expect(seen).toEqual(Array.from({ length: 600 }, (_, i) => i % 256));
    const tail: number[] = [];
    const seqs: number[] = [];
    await storage.wal.read(a, 1, la, (seq) => seqs.push(seq));
    await storage.wal.read(a, seqs[590]!, la, (_s, bytes) => tail.push(bytes[0]!));
    expect(tail).toEqual(Array.from({ length: 10 }, (_, i) => (590 + i) % 256));
    const other: number[] = [];
    await storage.wal.read(b, 1, lb, (_s, bytes) => other.push(bytes[1]!));
    expect(other).toEqual(new Array(200).fill(1));
  });

  // Each shard has its own stream: sequences are the shard's own, 1, 2, 3, ... whatever other shards append.
  it("numbers each shard's entries on its own", async () => {
    const a = h.names.wal(904, 0);
    const b = h.names.wal(904, 1);
    await storage.wal.open(a);
    await storage.wal.open(b);
    const seqs: number[] = [];
    let la = 0;
    let lb = 0;
    for (let i = 0; i < 3; i++) {
      la = await storage.wal.append(a, new Uint8Array([i]), la);
      lb = await storage.wal.append(b, new Uint8Array([i]), lb);
      seqs.push(la, lb);
    }
    expect(seqs).toEqual([1, 1, 2, 2, 3, 3]);
  });

  // A shard's log that was never opened has no stream: appending fails (nothing is written anywhere).
  it("refuses an append to a shard that was never opened", async () => {
    const subject = h.names.wal(905, 0);
    await expect(storage.wal.append(subject, new Uint8Array([1]), 0)).rejects.toThrow();
    expect(await storage.wal.lastSeq(subject)).toBe(0);
  });

  // Trimming removes entries below a position, but the fence stays the shard's last sequence.
  it("trims below a position and keeps fencing at the last sequence", async () => {
    const subject = h.names.wal(906, 0);
    await storage.wal.open(subject);
    let last = 0;
    for (let i = 0; i < 5; i++) last = await storage.wal.append(subject, new Uint8Array([i]), last);
    await storage.wal.trim(subject, 6); // everything
    expect(await storage.wal.lastSeq(subject)).toBe(5);
    await expect(storage.wal.append(subject, new Uint8Array([9]), 0)).rejects.toBeInstanceOf(WalFenced);
    expect(await storage.wal.append(subject, new Uint8Array([9]), 5)).toBe(6);
    const seen: number[] = [];
    await storage.wal.read(subject, 1, 6, (seq) => seen.push(seq));
    expect(seen).toEqual([6]);
  });

  // Dropping a collection deletes its shards' logs and nothing else.
  it("drops one collection's logs", async () => {
    const keep = h.names.wal(902, 0);
    const drop0 = h.names.wal(903, 0);
    const drop1 = h.names.wal(903, 1);
    for (const s of [keep, drop0, drop1]) {
      await storage.wal.open(s);
      await storage.wal.append(s, new Uint8Array([1]), 0);
    }
    await storage.wal.drop(h.names.walCollection(903));
    expect(await storage.wal.lastSeq(drop0)).toBe(0);
    expect(await storage.wal.lastSeq(drop1)).toBe(0);
    await expect(h.jsm.streams.info(h.names.walStream(903, 0))).rejects.toThrow(/stream not found/);
    expect(await storage.wal.lastSeq(keep)).toBe(1);
  });

  // A data directory of the earlier layout (one WAL stream for every shard): an empty stream is
  // removed at start-up; one with entries stops the start with a clear error instead of hiding them.
  it("retires an empty shared WAL stream and refuses one with entries", async () => {
    const config = defaultConfig({ natsUrl: env.get().nats.url, root: "legacy" });
    const lh = await openNats(config);
    try {
      const name = lh.names.stream(STREAM_WAL);
      await lh.jsm.streams.add({ name, subjects: [lh.names.walAll()] });
      await openStorage(lh, config);
      await expect(lh.jsm.streams.info(name)).rejects.toThrow(/stream not found/);
      await lh.jsm.streams.add({ name, subjects: [lh.names.walAll()] });
      await lh.js.publish(lh.names.wal(1, 0), new Uint8Array([1]));
      await expect(openStorage(lh, config)).rejects.toThrow(/holds 1 WAL entries written by an earlier natsvec/);
      expect((await lh.jsm.streams.info(name)).state.messages).toBe(1);
    } finally {
      await lh.nc.close();
    }
  });
});
