/**
 * The read-only loaded HNSW index (native/hnsw_search.cc) against hnswlib-node on the same files:
 * identical searches, points and bytes; corrupt files refused; the hnswlib-node fallback.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import hnswlib from "hnswlib-node";
import { rng } from "../testkit.ts";
import { indexFileRange, type IndexHeader } from "./format.ts";
import { bruteForceLimit, HnswIndex, hnswBuildAddon, type HnswLoader } from "./hnsw.ts";
import type { Metric, SearchResult } from "./types.ts";

const N = 8_000;
const D = 24;
const K = 10;
const METRICS: Metric[] = ["L2", "IP", "COSINE"];

const random = rng(2024);
const gaussian = (): number => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
/** Clustered rows (20 centres), so that ef visibly changes results. */
const DATA: Float32Array = (() => {
  const centres = Array.from({ length: 20 }, () => Float32Array.from({ length: D }, gaussian));
  const out = new Float32Array(N * D);
  for (let i = 0; i < N; i++) {
    const c = centres[Math.floor(random() * centres.length)]!;
    for (let j = 0; j < D; j++) out[i * D + j] = c[j]! + 0.8 * gaussian();
  }
  return out;
})();
const QUERIES = Array.from({ length: 40 }, () => Float32Array.from({ length: D }, gaussian));
const pick = rng(7);
/** Filters above bruteForceLimit(N), so the graph search runs with them (not the exact scan). */
const HALF = new Uint8Array(N).map(() => (pick() < 0.5 ? 1 : 0));
const TENTH = new Uint8Array(N).map(() => (pick() < 0.1 ? 1 : 0));
/** Below bruteForceLimit(N): the exact scan over stored points. */
const FEW = new Uint8Array(N).map(() => (pick() < 0.05 ? 1 : 0));

const dir = mkdtempSync(join(tmpdir(), "natsvec-hnsw-ro-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const M = 12;
const EF_CONSTRUCTION = 100;
/**
 * hnswlib's file of DATA under `metric`, built by the addon with rows N/2..N-1 inserted before 0..N/2-1
 * (on two threads), so labels (rows) differ from internal ids throughout; and its index header.
 */
const files = new Map<Metric, { path: string; header: IndexHeader; payload: Uint8Array }>();
const fileFor = (metric: Metric): { path: string; header: IndexHeader; payload: Uint8Array } => {
  let f = files.get(metric);
  if (f === undefined) {
    if (!("addon" in hnswBuildAddon)) throw new Error(`the HNSW addon is not built: ${hnswBuildAddon.missing}`);
    const { addon } = hnswBuildAddon;
    const path = join(dir, `${metric}.hnsw`);
    const builder = addon.create(spaceOf(metric), D, N, M, EF_CONSTRUCTION, 100);
    addon.add(builder, DATA, N / 2, N, 2);
    addon.add(builder, DATA, 0, N / 2, 2);
    addon.save(builder, path);
    addon.release(builder);
    f = { path, header: { type: "HNSW", metric, dim: D, count: N, params: { M, efConstruction: EF_CONSTRUCTION, seed: 100 } }, payload: new Uint8Array(readFileSync(path)) };
    files.set(metric, f);
  }
  return f;
};
const load = (metric: Metric, loader: HnswLoader): HnswIndex => HnswIndex.loadPayloadFile(fileFor(metric).header, fileFor(metric).path, loader);

/** hnswlib's file layout (hnswalg.h saveIndex): a 96-byte header, then per element [links][point][label]. */
const layout = (payload: Uint8Array) => {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const u64 = (at: number): number => Number(v.getBigUint64(at, true));
  const count = u64(16);
  const perElement = u64(24);
  const labelOffset = u64(32);
  const element = (i: number): number => 96 + i * perElement;
  return { view: v, count, perElement, element, label: (i: number): number => u64(element(i) + labelOffset), labelAt: (i: number) => element(i) + labelOffset };
};

const spaceOf = (metric: Metric): "l2" | "ip" | "cosine" => (metric === "L2" ? "l2" : metric === "IP" ? "ip" : "cosine");

const same = (a: SearchResult[], b: SearchResult[]): void => {
  expect(a.length).toBe(b.length);
  a.forEach((r, i) => {
    expect(Array.from(r.rows)).toEqual(Array.from(b[i]!.rows));
    expect(Array.from(r.distances)).toEqual(Array.from(b[i]!.distances));
  });
};
const differs = (a: SearchResult[], b: SearchResult[]): boolean => a.some((r, i) => Array.from(r.rows).join() !== Array.from(b[i]!.rows).join());

describe("read-only HNSW index", () => {
  // `npm install` builds native/hnsw_search.cc into the addon; without it indexes load into hnswlib-node (so this must hold where CI runs).
  it("is built, and loaded indexes use it", () => {
    if (process.platform !== "linux") return;
    expect("missing" in hnswBuildAddon ? hnswBuildAddon.missing : typeof hnswBuildAddon.addon.readOnly?.open).toBe("function");
    expect(load("L2", "auto").readOnly).toBe(true);
    expect(load("L2", "hnswlib-node").readOnly).toBe(false);
    // the second half of the rows went in first: the label table, not identity, maps rows to points
    const { count, label } = layout(fileFor("L2").payload);
    expect([label(0), label(count - 1)]).toEqual([N / 2, N / 2 - 1]);
  });

  for (const metric of METRICS) {
    // Proves the read-only index returns hnswlib-node's rows and distances exactly on the same file, at several ef (which
    // visibly change the answers), with k above ef, with a byte filter and a predicate, and through the exact scan.
    it(`${metric}: searches equal hnswlib-node's`, () => {
      const lean = load(metric, "auto");
      const node = load(metric, "hnswlib-node");
      const at = (idx: HnswIndex, ef: number, allow?: Uint8Array | ((row: number) => boolean), k = K) => idx.search(QUERIES, k, { ef }, allow);
      for (const ef of [10, 40, 200]) {
        same(at(lean, ef), at(node, ef));
        for (const bits of [HALF, TENTH]) {
          const filtered = at(lean, ef, bits);
          same(filtered, at(node, ef, bits));
          same(filtered, at(lean, ef, (row) => bits[row] === 1));
          for (const r of filtered) for (const row of r.rows) expect(bits[row]).toBe(1);
          expect(differs(filtered, at(lean, ef))).toBe(true);
        }
      }
      expect(differs(at(lean, 10), at(lean, 200))).toBe(true);
      same(at(lean, 10, undefined, 60), at(node, 10, undefined, 60));
      // past its end a byte filter allows nothing; a short one still yields only allowed rows
      same(at(lean, 40, TENTH.subarray(0, N / 2)), at(node, 40, TENTH.subarray(0, N / 2)));
      expect(FEW.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(bruteForceLimit(N));
      same(at(lean, 40, FEW), at(node, 40, FEW));
    });

    // Proves points read back equal hnswlib-node's getPoint (normalized under COSINE), serialize gives back the bytes loaded,
    // and memoryBytes counts the file plus a few bytes per element, not hnswlib-node's ~96.
    it(`${metric}: points, bytes and memory`, () => {
      const { path, payload, header } = fileFor(metric);
      const lean = load(metric, "auto");
      const native = new hnswlib.HierarchicalNSW(spaceOf(metric), D);
      native.readIndexSync(path);
      if (!("addon" in hnswBuildAddon)) throw new Error(hnswBuildAddon.missing);
      const ro = hnswBuildAddon.addon.readOnly!;
      const handle = ro.open(spaceOf(metric), D, path);
      const rows = [0, 1, 2, 4321, N - 1];
      for (const row of rows) expect(Array.from(ro.getPoint(handle, row))).toEqual(Array.from(native.getPoint(row)));
      expect(() => ro.getPoint(handle, N)).toThrow(/Label not found/);
      ro.release(handle);
      if (metric !== "COSINE") {
        const back = lean.rawVectors(Int32Array.from({ length: 3000 }, (_, i) => (i * 7919) % N));
        expect(Array.from(back)).toEqual(Array.from(load(metric, "hnswlib-node").rawVectors(Int32Array.from({ length: 3000 }, (_, i) => (i * 7919) % N))));
        expect(Array.from(back.subarray(0, D))).toEqual(Array.from(DATA.subarray(0, D)));
      }
      const bytes = lean.serialize();
      const r = indexFileRange(bytes.subarray(0, 4096), bytes.length)!;
      expect(r.hnswHeader).toEqual(header);
      expect(Buffer.compare(bytes.subarray(r.from, r.to), payload)).toBe(0);
      expect(lean.memoryBytes()).toBeGreaterThan(payload.length);
      expect(lean.memoryBytes()).toBeLessThan(payload.length + 24 * N);
      expect(load(metric, "hnswlib-node").memoryBytes() - lean.memoryBytes()).toBeGreaterThan(70 * N);
    });
  }

  // Proves release frees the graph at once and later use is an Error, not a crash.
  it("release", () => {
    const lean = load("IP", "auto");
    lean.release();
    expect(() => lean.search(QUERIES, K)).toThrow(/released/);
    expect(() => lean.rawVectors([0])).toThrow(/released/);
    lean.release();
  });

  // Proves the fallback (hnswlib-node loading the file) keeps every method working: filtered search, scan, points, bytes.
  it("hnswlib-node fallback", () => {
    const node = load("L2", "hnswlib-node");
    expect(node.search(QUERIES, K, { ef: 64 }, TENTH).every((r) => r.rows.length === K && r.rows.every((row) => TENTH[row] === 1))).toBe(true);
    expect(node.search(QUERIES, K, { ef: 64 }, FEW).every((r) => r.rows.every((row) => FEW[row] === 1))).toBe(true);
    expect(Array.from(node.rawVectors([5]))).toEqual(Array.from(DATA.subarray(5 * D, 6 * D)));
    const bytes = node.serialize();
    const r = indexFileRange(bytes.subarray(0, 4096), bytes.length)!;
    expect(Buffer.compare(bytes.subarray(r.from, r.to), fileFor("L2").payload)).toBe(0);
    node.release(); // a no-op: hnswlib-node frees at garbage collection
    expect(node.search(QUERIES.slice(0, 1), K)[0]!.rows.length).toBe(K);
  });
});

describe("read-only HNSW index: bad files", () => {
  /** Load `bytes` as the L2 file under the L2 header (dim D unless given). */
  const loadBytes = (bytes: Uint8Array, dim = D): HnswIndex => {
    const path = join(dir, "bad.hnsw");
    writeFileSync(path, bytes);
    return HnswIndex.loadPayloadFile({ ...fileFor("L2").header, dim }, path, "auto");
  };
  const edited = (edit: (l: ReturnType<typeof layout>) => void): Uint8Array => {
    const copy = fileFor("L2").payload.slice();
    edit(layout(copy));
    return copy;
  };

  // Proves a truncated file (in the header, the points, the link lists) or one with bytes after its end is refused with an Error naming the fault.
  it("truncated or overlong", () => {
    const good = fileFor("L2").payload;
    const { element } = layout(good);
    for (const cut of [0, 50, 95, 96, element(1) + 3, element(N) - 1, element(N) + 2, good.length - 1])
      expect(() => loadBytes(good.subarray(0, cut)), `cut at ${cut}`).toThrow(/truncated/);
    expect(() => loadBytes(Buffer.concat([good, new Uint8Array(4)]))).toThrow(/4 bytes after the last link list/);
  });

  // Proves each corruption a search would trip over is caught at load: the layout, the dimension, a neighbour that is no
  // element, a list longer than its capacity, the entry point, and labels that are not the row numbers.
  it("corrupt", () => {
    const cases: [string, (l: ReturnType<typeof layout>) => void, RegExp][] = [
      ["level-0 offset", (l) => l.view.setBigUint64(0, 8n, true), /level-0 offset/],
      ["count above capacity", (l) => l.view.setBigUint64(8, BigInt(N - 1), true), /exceed the capacity/],
      ["layout", (l) => l.view.setBigUint64(24, BigInt(l.perElement + 4), true), /element layout/],
      ["neighbour id", (l) => l.view.setUint32(l.element(3) + 4, N + 5, true), /links to \d+, which is not an element/],
      ["list length", (l) => l.view.setUint16(l.element(3), 200, true), /links at level 0 \(at most 24\)/],
      ["entry point", (l) => l.view.setUint32(52, N, true), /entry point/],
      ["label range", (l) => l.view.setBigUint64(l.labelAt(2), BigInt(N), true), /is not a row number/],
      ["duplicate label", (l) => l.view.setBigUint64(l.labelAt(2), BigInt(l.label(3)), true), /appears twice/],
    ];
    for (const [what, edit, message] of cases) expect(() => loadBytes(edited(edit)), what).toThrow(message);
    expect(() => loadBytes(fileFor("L2").payload, D + 1)).toThrow(/another dimension/);
    expect(() => HnswIndex.loadPayloadFile(fileFor("L2").header, join(dir, "missing.hnsw"), "auto")).toThrow(/cannot open/);
    expect(() => HnswIndex.loadPayloadFile({ ...fileFor("L2").header, count: N - 1 }, fileFor("L2").path, "auto")).toThrow(/holds 8000 points, its header says 7999/);
  });

  // Proves random damage never takes the process down: each of 300 damaged files is refused with an Error, or loads and searches.
  it("random damage: an Error or a working index, never a crash", () => {
    const damage = rng(99);
    const good = fileFor("L2").payload;
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const bytes = good.slice();
      for (let j = 0; j < 3; j++) bytes[damage() < 0.3 ? Math.floor(damage() * 96) : Math.floor(damage() * bytes.length)] = Math.floor(damage() * 256);
      try {
        loadBytes(bytes).search(QUERIES.slice(0, 3), K, { ef: 32 });
      } catch (e) {
        expect(e).toBeInstanceOf(Error);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
  });
});
