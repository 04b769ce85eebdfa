/**
 * Serialized index container, shared by every index type:
 *
 *   offset 0   "NVIX" magic (4 bytes)
 *          4   u32 LE format version (1)
 *          8   u32 LE header length H
 *         12   u32 LE reserved (0)
 *         16   header: H bytes of UTF-8 JSON
 *              { type, metric, dim, count, params, extra?, sections: [{ name, offset, length }] }
 *   then the sections, each starting at an 8-byte-aligned offset (relative to
 *   the container start) so typed-array views need no copy when the container
 *   itself is 8-byte aligned.
 *
 * Numeric section contents are little-endian (the typed arrays' native order
 * on every platform Node supports).
 */
import type { Metric } from "../search.ts";
import { IndexParamError, IndexTypes, type BuildParams, type IndexType } from "./types.ts";

const MAGIC = [0x4e, 0x56, 0x49, 0x58]; // "NVIX"
const VERSION = 1;
const FIXED = 16;

export interface IndexHeader {
  type: IndexType;
  metric: Metric;
  dim: number;
  count: number;
  params: BuildParams;
  /** Type-specific scalars (e.g. IVF nlist actually used). */
  extra?: Record<string, number | string | boolean>;
}

interface SectionEntry {
  name: string;
  offset: number;
  length: number;
}

const align8 = (n: number): number => (n + 7) & ~7;

const asBytes = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** Encode a header and named sections into one fresh buffer (safe to transfer). */
export const encodeIndex = (header: IndexHeader, sections: ReadonlyArray<readonly [string, ArrayBufferView]>): Uint8Array => {
  const entries: SectionEntry[] = [];
  let rel = 0;
  for (const [name, view] of sections) {
    entries.push({ name, offset: rel, length: view.byteLength });
    rel = align8(rel + view.byteLength);
  }
  // Offsets depend on the header's length, which depends on the offsets: encode
  // once with relative offsets to size it, then fix up with absolute ones
  // (adding a constant can only lengthen the numbers, so iterate to a fixpoint).
  let dataStart = 0;
  let json = "";
  for (;;) {
    json = JSON.stringify({ ...header, sections: entries.map((e) => ({ ...e, offset: e.offset + dataStart })) });
    const need = align8(FIXED + Buffer.byteLength(json, "utf8"));
    if (need === dataStart) break;
    dataStart = need;
  }
  const headerBytes = Buffer.from(json, "utf8");
  const out = new Uint8Array(dataStart + rel);
  out.set(MAGIC, 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(4, VERSION, true);
  dv.setUint32(8, headerBytes.length, true);
  out.set(headerBytes, FIXED);
  sections.forEach(([, view], i) => out.set(asBytes(view), dataStart + entries[i]!.offset));
  return out;
};

export interface DecodedIndex {
  header: IndexHeader;
  /** Raw bytes of a section (a view into the input, no copy). */
  bytes(name: string): Uint8Array;
  f32(name: string): Float32Array;
  i32(name: string): Int32Array;
  has(name: string): boolean;
}

/** Header and section table of a container of `total` bytes whose first bytes are `head` (at least FIXED + header length). */
const parseContainer = (head: Uint8Array, total: number): { header: IndexHeader; sections: Map<string, SectionEntry> } => {
  if (head.length < FIXED || MAGIC.some((b, i) => head[i] !== b)) throw new IndexParamError("not a natsvec index (bad magic)");
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const version = dv.getUint32(4, true);
  if (version !== VERSION) throw new IndexParamError(`unsupported index format version ${version}`);
  const hlen = dv.getUint32(8, true);
  if (FIXED + hlen > head.length || FIXED + hlen > total) throw new IndexParamError("truncated index header");
  let parsed: IndexHeader & { sections: SectionEntry[] };
  try {
    parsed = JSON.parse(Buffer.from(head.buffer, head.byteOffset + FIXED, hlen).toString("utf8"));
  } catch {
    throw new IndexParamError("corrupt index header");
  }
  if (!(IndexTypes as readonly string[]).includes(parsed.type)) throw new IndexParamError(`unknown index type '${parsed.type}' in header`);
  const sections = new Map<string, SectionEntry>();
  for (const s of parsed.sections ?? []) {
    if (s.offset < 0 || s.offset + s.length > total) throw new IndexParamError(`index section '${s.name}' is out of bounds (truncated?)`);
    sections.set(s.name, s);
  }
  const { sections: _s, ...header } = parsed;
  return { header, sections };
};

/**
 * Which bytes of a stored index to put in the file a worker loads from, decided from the object's
 * first bytes (`head`, as many as have arrived; `total` its size): undefined until the header is
 * complete. For HNSW, just the hnsw section (hnswlib reads its own file format from the file
 * itself), with the header to load it by; otherwise the whole container.
 */
export const indexFileRange = (head: Uint8Array, total: number): { from: number; to: number; hnswHeader?: IndexHeader } | undefined => {
  if (head.length < FIXED) {
    if (total < FIXED) parseContainer(head, total); // throws: too short to be an index
    return undefined;
  }
  const hlen = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(8, true);
  if (head.length < FIXED + hlen && total >= FIXED + hlen) return undefined;
  const { header, sections } = parseContainer(head, total);
  const hnsw = sections.get("hnsw");
  if (header.type === "HNSW" && hnsw !== undefined) return { from: hnsw.offset, to: hnsw.offset + hnsw.length, hnswHeader: header };
  return { from: 0, to: total };
};

export const decodeIndex = (bytes: Uint8Array): DecodedIndex => {
  const { header, sections: map } = parseContainer(bytes, bytes.length);
  const get = (name: string): Uint8Array => {
    const s = map.get(name);
    if (!s) throw new IndexParamError(`index is missing section '${name}'`);
    return bytes.subarray(s.offset, s.offset + s.length);
  };
  // Zero-copy views when aligned, else one copy into a fresh buffer.
  const typed = <T>(name: string, width: number, make: (buf: ArrayBufferLike, off: number, len: number) => T): T => {
    const b = get(name);
    if (b.length % width !== 0) throw new IndexParamError(`index section '${name}' has a bad length`);
    if (b.byteOffset % width === 0) return make(b.buffer, b.byteOffset, b.length / width);
    const copy = b.slice();
    return make(copy.buffer, 0, b.length / width);
  };
  return {
    header,
    bytes: get,
    has: (name) => map.has(name),
    f32: (name) => typed(name, 4, (buf, off, len) => new Float32Array(buf, off, len)),
    i32: (name) => typed(name, 4, (buf, off, len) => new Int32Array(buf, off, len)),
  };
};
