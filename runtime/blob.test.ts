import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ObjectStore } from "@nats-io/obj";
import { beforeAll, describe, expect, it } from "vitest";
import { ChecksumMismatch, TS_FIELD_ID, decodeSegment, encodeSegment } from "../engine/binlog.ts";
import { fld, makeSchema } from "../engine/testkit.ts";
import { objectNames } from "../schemas/names.ts";
import { useStorage } from "../test/harness/storage.ts";
import { BlobReadStalled, MemoryBlobs, ObjectStoreBlobs, type BlobStore } from "./blob.ts";
import type { NatsHandles } from "./services.ts";
import type { Storage } from "./storage.ts";

const env = useStorage();
let h: NatsHandles;
let storage: Storage;
beforeAll(() => {
  ({ h, storage } = env.get());
});

const equalBytes = (a: Uint8Array | undefined, b: Uint8Array): boolean =>
  a !== undefined && a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

let unique = 0;

describe.each<[string, () => BlobStore]>([
  ["nats", () => new ObjectStoreBlobs(storage.segments)],
  ["memory", () => new MemoryBlobs()],
])("BlobStore contract: %s", (_kind, make) => {
  // Each test works under its own prefix (the nats bucket is shared by the file's tests).
  const prefix = () => `contract-${_kind}-${++unique}/`;

  // put then get returns the same bytes; an absent name gets undefined; a second put replaces the object.
  it("puts, gets and replaces", async () => {
    const b = make();
    const p = prefix();
    expect(await b.get(`${p}missing`)).toBeUndefined();
    const one = new Uint8Array([1, 2, 3]);
    await b.put(`${p}a`, one);
    expect(equalBytes(await b.get(`${p}a`), one)).toBe(true);
    const two = randomBytes(300_000);
    await b.put(`${p}a`, two);
    expect(equalBytes(await b.get(`${p}a`), two)).toBe(true);
    const empty = new Uint8Array(0);
    await b.put(`${p}empty`, empty);
    expect(equalBytes(await b.get(`${p}empty`), empty)).toBe(true);
  });

  // The store keeps its own copy: mutating the caller's buffer after put, or the returned buffer after get, changes nothing stored.
  it("isolates stored bytes from callers", async () => {
    const b = make();
    const p = prefix();
    const src = new Uint8Array([9, 9, 9]);
    await b.put(`${p}x`, src);
    src[0] = 0;
    const got = await b.get(`${p}x`);
    expect([...got!]).toEqual([9, 9, 9]);
    got![1] = 0;
    expect([...(await b.get(`${p}x`))!]).toEqual([9, 9, 9]);
  });

  // delete removes an object; deleting an absent (or already deleted) name is a no-op.
  it("deletes, absent is a no-op", async () => {
    const b = make();
    const p = prefix();
    await b.put(`${p}d`, new Uint8Array([1]));
    await b.delete(`${p}d`);
    expect(await b.get(`${p}d`)).toBeUndefined();
    await b.delete(`${p}d`);
    await b.delete(`${p}never`);
    expect(await b.list(p)).toEqual([]);
    await b.put(`${p}d`, new Uint8Array([2]));
    expect([...(await b.get(`${p}d`))!]).toEqual([2]);
  });

  // list returns exactly the live names starting with the prefix, sorted.
  it("lists by prefix", async () => {
    const b = make();
    const p = prefix();
    const names = [`${p}1/2/3/stats`, `${p}1/2/3/insert/100`, `${p}1/2/30/stats`, `${p}1/20/3/stats`, `${p}2/2/3/stats`];
    for (const n of names) await b.put(n, new Uint8Array([n.length]));
    await b.put(`${p}1/2/3/gone`, new Uint8Array([0]));
    await b.delete(`${p}1/2/3/gone`);
    expect(await b.list(`${p}1/2/3/`)).toEqual([`${p}1/2/3/insert/100`, `${p}1/2/3/stats`]);
    expect(await b.list(`${p}1/`)).toEqual([...names.slice(0, 4)].sort());
    expect(await b.list(p)).toEqual([...names].sort());
    expect(await b.list(`${p}9/`)).toEqual([]);
    expect((await b.list("")).filter((n) => n.startsWith(p))).toEqual([...names].sort());
  });

  // 12 MB and 40 MB objects come back byte-exact, and two concurrent 40 MB reads complete (no stall, nats.js #430).
  it("stores large objects", async () => {
    const b = make();
    const p = prefix();
    const mid = randomBytes(12 * 1024 * 1024);
    const big = randomBytes(40 * 1024 * 1024);
    await b.put(`${p}12mb`, mid);
    await b.put(`${p}40mb`, big);
    expect(equalBytes(await b.get(`${p}12mb`), mid)).toBe(true);
    const [x, y] = await Promise.all([b.get(`${p}40mb`), b.get(`${p}40mb`)]);
    expect(equalBytes(x, big)).toBe(true);
    expect(equalBytes(y, big)).toBe(true);
    await b.delete(`${p}12mb`);
    await b.delete(`${p}40mb`);
  }, 60_000);

  // getToFile writes the object's exact bytes to the file (replacing what was there) and returns its size; an absent name creates no file.
  it("reads an object into a file", async () => {
    const b = make();
    const p = prefix();
    const dir = mkdtempSync(join(tmpdir(), "natsvec-blob-"));
    try {
      const big = randomBytes(9 * 1024 * 1024 + 13);
      await b.put(`${p}big`, big);
      const path = join(dir, "out.bin");
      expect(await b.getToFile(`${p}big`, path)).toBe(big.byteLength);
      expect(equalBytes(readFileSync(path), big)).toBe(true);
      const small = randomBytes(100);
      await b.put(`${p}small`, small);
      expect(await b.getToFile(`${p}small`, path)).toBe(100);
      expect(equalBytes(readFileSync(path), small)).toBe(true);
      // A range decided once 300 KiB of the head are in (past the first chunks): only [from, to) is written.
      let calls = 0;
      const range = (head: Uint8Array, total: number) => {
        calls++;
        expect(total).toBe(big.byteLength);
        return head.byteLength < 300 * 1024 ? undefined : { from: 200_001, to: total - 7 };
      };
      expect(await b.getToFile(`${p}big`, path, { range })).toBe(big.byteLength);
      expect(calls).toBeGreaterThan(1);
      expect(equalBytes(readFileSync(path), big.subarray(200_001, big.byteLength - 7))).toBe(true);
      expect(await b.getToFile(`${p}absent`, join(dir, "absent.bin"))).toBeUndefined();
      expect(existsSync(join(dir, "absent.bin"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("ObjectStoreBlobs", () => {
  // A segment written to the Object Store reads back intact; replacing one object with other bytes makes decode throw ChecksumMismatch naming that object.
  it("detects a corrupted segment object in the Object Store", async () => {
    const blobs = new ObjectStoreBlobs(storage.segments);
    const schema = makeSchema([fld("id", "Int64", { isPrimary: true }), fld("v", "FloatVector", { dim: 16 }), fld("s", "VarChar", { maxLength: 10 })]);
    const n = 1000;
    const batch = {
      rowCount: n,
      columns: {
        id: { kind: "int64" as const, data: BigInt64Array.from({ length: n }, (_, i) => BigInt(n - i) * 7n) },
        v: { kind: "vector" as const, dim: 16, data: Float32Array.from({ length: n * 16 }, (_, i) => i / 3) },
        s: { kind: "values" as const, data: Array.from({ length: n }, (_, i) => `r${i}`) },
      },
    };
    const [c, p, s] = [42, 7, 1001];
    const enc = encodeSegment(schema, batch, new BigUint64Array(n).fill(99n));
    for (const [fieldId, bytes] of enc.fieldLogs) await blobs.put(objectNames.insertLog(c, p, s, fieldId), bytes);
    await blobs.put(objectNames.stats(c, p, s), enc.stats);
    const nameOf = (o: number | "stats") => (o === "stats" ? objectNames.stats(c, p, s) : objectNames.insertLog(c, p, s, o));
    const load = async () => {
      const names = await blobs.list(objectNames.segmentPrefix(c, p, s));
      const logs = new Map<number, Uint8Array>();
      for (const name of names) {
        const m = /\/insert\/(\d+)$/.exec(name);
        if (m) logs.set(Number(m[1]), (await blobs.get(name))!);
      }
      return decodeSegment(schema, logs, (await blobs.get(objectNames.stats(c, p, s)))!, nameOf);
    };
    const ok = await load();
    expect(ok.batch.rowCount).toBe(n);
    expect([...(ok.batch.columns.id as { data: BigInt64Array }).data]).toEqual([...batch.columns.id.data]);
    expect(ok.insertTs[n - 1]).toBe(99n);

    // Same length, one byte different, stored under the same name.
    const victim = objectNames.insertLog(c, p, s, 101);
    const bad = enc.fieldLogs.get(101)!.slice();
    bad[5000] = bad[5000]! ^ 0x40;
    await blobs.put(victim, bad);
    const err = await load().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ChecksumMismatch);
    expect((err as ChecksumMismatch).object).toBe(victim);
    expect((err as Error).message).toContain(victim);

    // Restored, then the timestamp log replaced by a truncated copy.
    await blobs.put(victim, enc.fieldLogs.get(101)!);
    const tsName = objectNames.insertLog(c, p, s, TS_FIELD_ID);
    await blobs.put(tsName, enc.fieldLogs.get(TS_FIELD_ID)!.subarray(0, 100));
    await expect(load()).rejects.toThrow(tsName);
    await blobs.put(tsName, enc.fieldLogs.get(TS_FIELD_ID)!);
    expect((await load()).batch.rowCount).toBe(n);
  });

  // A read that stops delivering chunks fails with BlobReadStalled after the idle timeout on every attempt, instead of hanging.
  it("gives up on a stalled read", async () => {
    let calls = 0;
    const stuck = {
      get: async () => {
        calls++;
        return {
          info: { size: 10 },
          data: new ReadableStream<Uint8Array>({
            start(ctl) {
              ctl.enqueue(new Uint8Array(3));
            },
          }),
          error: new Promise<Error | null>(() => undefined),
        };
      },
    } as unknown as ObjectStore;
    const blobs = new ObjectStoreBlobs(stuck, { idleTimeoutMs: 100, readAttempts: 2 });
    const t0 = Date.now();
    await expect(blobs.get("x")).rejects.toBeInstanceOf(BlobReadStalled);
    expect(calls).toBe(2);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  // A read into a file that stalls once starts the file over on the retry: it ends with exactly the object's bytes.
  it("restarts the file when a read stalls and is retried", async () => {
    const object = Uint8Array.from({ length: 10 }, (_, i) => i + 1);
    let calls = 0;
    const flaky = {
      get: async () => {
        calls++;
        const first = calls === 1;
        return {
          info: { size: 10 },
          data: new ReadableStream<Uint8Array>({
            start(ctl) {
              ctl.enqueue(object.slice(0, 4));
              if (first) return; // stalls after 4 bytes
              ctl.enqueue(object.slice(4));
              ctl.close();
            },
          }),
          error: first ? new Promise<Error | null>(() => undefined) : Promise.resolve(null),
        };
      },
    } as unknown as ObjectStore;
    const blobs = new ObjectStoreBlobs(flaky, { idleTimeoutMs: 100, readAttempts: 2 });
    const dir = mkdtempSync(join(tmpdir(), "natsvec-blob-"));
    try {
      const path = join(dir, "x.bin");
      expect(await blobs.getToFile("x", path)).toBe(10);
      expect(calls).toBe(2);
      expect([...readFileSync(path)]).toEqual([...object]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
