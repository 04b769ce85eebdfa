import { describe, expect, it } from "vitest";
import { packMsgpack } from "../../runtime/codec.ts";
import { packWalEntry, unpackWalEntry, walEntryBytes, type WalEntry } from "./protocol.ts";

const join = (parts: readonly Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);

describe("WAL entry layout", () => {
  const entry: WalEntry = {
    ts: 451_234_567_890_123n,
    ops: [
      { op: "delete", pks: [5n, "k"], segs: [3, 4] },
      { op: "insert", segmentId: 7, partitionId: 1, batch: bytes(1000, 1) },
      { op: "seal", segments: [{ segmentId: 7, partitionId: 1 }] },
      { op: "insert", segmentId: 8, partitionId: 2, batch: bytes(0, 2) },
      { op: "insert", segmentId: 9, partitionId: 2, batch: bytes(70_000, 3) },
    ],
    part: { txn: "abc", index: 1, count: 3 },
  };

  it("round-trips every op, the batches as written, without copying them into the header", () => {
    const parts = packWalEntry(entry);
    expect(parts.slice(1)).toEqual([entry.ops[1]!, entry.ops[3]!, entry.ops[4]!].map((o) => (o as { batch: Uint8Array }).batch));
    expect(parts[0]!.length).toBeLessThan(1000); // the header alone (the batches are 71 KB)
    const whole = join(parts);
    expect(walEntryBytes(parts)).toBe(whole.length);
    expect(unpackWalEntry(whole)).toEqual(entry);
  });

  it("still reads entries written as one msgpack value", () => {
    expect(unpackWalEntry(packMsgpack(entry))).toEqual(entry);
  });

  it("refuses a frame that does not add up", () => {
    const whole = join(packWalEntry(entry));
    expect(() => unpackWalEntry(whole.subarray(0, whole.length - 1))).toThrow(/bad batch length/);
    expect(() => unpackWalEntry(join([whole, new Uint8Array(1)]))).toThrow(/after the last batch/);
    expect(() => unpackWalEntry(whole.subarray(0, 3))).toThrow(/truncated/);
    const lying = whole.slice();
    new DataView(lying.buffer).setUint32(1, whole.length, true);
    expect(() => unpackWalEntry(lying)).toThrow(/header runs past/);
  });
});
