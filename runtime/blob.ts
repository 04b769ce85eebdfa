/**
 * Blob store: named immutable byte objects (sealed-segment binlogs, stats,
 * delta logs, index files). `ObjectStoreBlobs` keeps them in a NATS Object
 * Store bucket; `MemoryBlobs` is the in-process stand-in for unit tests. Both
 * obey the same contract (runtime/blob.test.ts runs one suite against both):
 *
 *   put     stores a copy of the bytes under `name` (replacing any previous object)
 *   get     the bytes, or undefined when absent (or deleted)
 *   delete  removes the object; deleting an absent name is a no-op
 *   list    names starting with `prefix`, sorted ascending
 *
 * Reading: nats.js issue #430 reports `ObjectStore.get`/`getBlob` stalling on
 * large objects (the ordered push consumer's flow-control request is never
 * answered). We read the stream eagerly (every chunk is pulled as soon as it
 * arrives) and guard the read with an idle watchdog: when no chunk arrives
 * for `idleTimeoutMs`, the read is cancelled and retried from scratch
 * (`readAttempts` in all), then fails with `BlobReadStalled`; a read never
 * hangs forever. The Object Store verifies its own SHA-256 digest of the whole
 * object; `get` also checks the byte count against the object's info.
 */
import { open } from "node:fs/promises";
import type { ObjectStore } from "@nats-io/obj";

export interface BlobStore {
  put(name: string, bytes: Uint8Array): Promise<void>;
  /** undefined if absent. */
  get(name: string): Promise<Uint8Array | undefined>;
  /**
   * Write the object into the file at `path` (created or truncated), chunk by
   * chunk as it arrives, so a large object is never whole in memory; its size,
   * or undefined (and no file) when absent. Same verification as `get`: on a
   * failed read the file is left incomplete and the call throws.
   *
   * With `range`, only part of the object goes to the file: `range` sees the
   * object's first bytes (as many as have arrived, and its total size) and
   * answers the [from, to) byte range to keep, or undefined to see more.
   */
  getToFile(name: string, path: string, opts?: GetToFileOptions): Promise<number | undefined>;
  /** Absent = no-op. */
  delete(name: string): Promise<void>;
  /** Names starting with `prefix`, sorted ascending. */
  list(prefix: string): Promise<string[]>;
}

export interface GetToFileOptions {
  readonly range?: (head: Uint8Array, total: number) => { from: number; to: number } | undefined;
}

/**
 * A sink writing the [from, to) range of an object to a file, the range decided by `opts.range`
 * once enough of the object's head has arrived (the whole object without it).
 */
const fileSink = (path: string, opts: GetToFileOptions): ChunkSink & { close(): Promise<void> } => {
  let file: Awaited<ReturnType<typeof open>> | undefined;
  let total = 0;
  let range: { from: number; to: number } | undefined;
  let head: Uint8Array[] = [];
  let headBytes = 0;
  let pos = 0; // object offset of the next chunk's first byte
  const put = async (chunk: Uint8Array, at: number) => {
    const from = Math.max(range!.from, at);
    const to = Math.min(range!.to, at + chunk.byteLength);
    if (from < to) await file!.write(chunk.subarray(from - at, to - at));
  };
  return {
    start: async (size) => {
      await file?.close();
      file = await open(path, "w");
      total = size;
      range = opts.range ? undefined : { from: 0, to: size };
      head = [];
      headBytes = 0;
      pos = 0;
    },
    write: async (chunk) => {
      if (range === undefined) {
        head.push(chunk);
        headBytes += chunk.byteLength;
        const seen = concat(head, headBytes);
        range = opts.range!(seen, total);
        if (range === undefined) {
          if (headBytes >= total) throw new Error(`object ends (${total} bytes) before its layout is known`);
          head = [seen];
          return;
        }
        head = [];
        await put(seen, 0);
        pos = seen.byteLength;
        return;
      }
      await put(chunk, pos);
      pos += chunk.byteLength;
    },
    close: async () => {
      await file?.close();
      file = undefined;
    },
  };
};

/** A read made no progress for the idle timeout on every attempt. */
export class BlobReadStalled extends Error {
  override readonly name = "BlobReadStalled";
  constructor(
    readonly object: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ObjectStoreBlobsOptions {
  /** Chunk size of puts (capped by the server's max payload by nats.js). Default 128 KiB (the nats.js default). */
  readonly chunkBytes?: number;
  /** A read with no chunk for this long is abandoned (and retried). Default 30 000 ms. */
  readonly idleTimeoutMs?: number;
  /** Read attempts before BlobReadStalled. Default 2. */
  readonly readAttempts?: number;
}

const concat = (parts: Uint8Array[], total: number): Uint8Array => {
  if (parts.length === 1 && parts[0]!.byteLength === total) return parts[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
};

type ReadOutcome = { ok: number } | { absent: true } | { stalled: string };

/** Where a read's chunks go: `start` begins (or restarts, after a stall) the object, `write` appends a chunk. */
interface ChunkSink {
  start(size: number): Promise<void>;
  write(chunk: Uint8Array): Promise<void>;
}

export class ObjectStoreBlobs implements BlobStore {
  private readonly chunkBytes: number;
  private readonly idleTimeoutMs: number;
  private readonly readAttempts: number;

  constructor(
    readonly os: ObjectStore,
    options: ObjectStoreBlobsOptions = {},
  ) {
    this.chunkBytes = options.chunkBytes ?? 128 * 1024;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.readAttempts = Math.max(1, options.readAttempts ?? 2);
  }

  async put(name: string, bytes: Uint8Array): Promise<void> {
    // putBlob enqueues the caller's array in a ReadableStream and chunks it while
    // publishing; copy so a caller mutating its buffer mid-put cannot tear the object.
    await this.os.putBlob({ name, options: { max_chunk_size: this.chunkBytes } }, new Uint8Array(bytes));
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    let parts: Uint8Array[] = [];
    const size = await this.read(name, {
      start: async () => {
        parts = [];
      },
      write: async (chunk) => {
        parts.push(chunk);
      },
    });
    return size === undefined ? undefined : concat(parts, size);
  }

  async getToFile(name: string, path: string, opts: GetToFileOptions = {}): Promise<number | undefined> {
    const sink = fileSink(path, opts);
    try {
      return await this.read(name, sink);
    } finally {
      await sink.close();
    }
  }

  /** Read `name` into `sink` (restarted from `start` on every attempt); its size, or undefined when absent. */
  private async read(name: string, sink: ChunkSink): Promise<number | undefined> {
    let last = "";
    for (let attempt = 1; attempt <= this.readAttempts; attempt++) {
      const r = await this.readOnce(name, sink);
      if ("ok" in r) return r.ok;
      if ("absent" in r) return undefined;
      last = r.stalled;
    }
    throw new BlobReadStalled(name, `reading object '${name}' stalled ${this.readAttempts} time(s): ${last}`);
  }

  private async readOnce(name: string, sink: ChunkSink): Promise<ReadOutcome> {
    const r = await this.os.get(name);
    if (r === null) return { absent: true };
    await sink.start(r.info.size);
    const expected = r.info.size;
    // Settles when the consumer finishes; rejects on consumer failures. Observed here so a
    // rejection we never reach (the stream errored first) is not an unhandled rejection.
    const consumerError = Promise.resolve(r.error).then(
      (e) => e,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    );
    const reader = r.data.getReader();
    let total = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const idle = () =>
      new Promise<"idle">((resolve) => {
        timer = setTimeout(() => resolve("idle"), this.idleTimeoutMs);
      });
    try {
      for (;;) {
        const step = await Promise.race([reader.read(), idle()]);
        clearTimeout(timer);
        if (step === "idle") {
          await reader.cancel().catch(() => undefined);
          return { stalled: `no data for ${this.idleTimeoutMs} ms after ${total} of ${expected} bytes` };
        }
        if (step.done) break;
        if (step.value.byteLength > 0) {
          await sink.write(step.value);
          total += step.value.byteLength;
        }
      }
    } finally {
      clearTimeout(timer);
    }
    // The stream errors (rejecting read()) on a digest mismatch; r.error carries consumer failures.
    const err = await consumerError;
    if (err) throw err;
    if (total !== expected) throw new Error(`object '${name}': read ${total} bytes, its info says ${expected}`);
    return { ok: total };
  }

  async delete(name: string): Promise<void> {
    const info = await this.os.info(name);
    if (info === null || info.deleted) return;
    await this.os.delete(name);
  }

  async list(prefix: string): Promise<string[]> {
    // Scans the bucket's metadata (one message per live object); fine for the
    // object counts of a segment bucket, revisit with a name index if it grows large.
    const infos = await this.os.list();
    const out: string[] = [];
    for (const i of infos) if (!i.deleted && i.name.startsWith(prefix)) out.push(i.name);
    return out.sort();
  }
}

/** Piece size MemoryBlobs.getToFile hands its sink (the Object Store's default chunk). */
const MEMORY_CHUNK = 128 * 1024;

/** In-process blob store (copies on put and get, like a real store). */
export class MemoryBlobs implements BlobStore {
  private readonly objects = new Map<string, Uint8Array>();

  async put(name: string, bytes: Uint8Array): Promise<void> {
    this.objects.set(name, new Uint8Array(bytes));
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    return this.objects.get(name)?.slice();
  }

  async getToFile(name: string, path: string, opts: GetToFileOptions = {}): Promise<number | undefined> {
    const bytes = this.objects.get(name);
    if (bytes === undefined) return undefined;
    const sink = fileSink(path, opts);
    try {
      await sink.start(bytes.byteLength);
      // In pieces, like a store read, so a range decided from a partial head is exercised too.
      for (let at = 0; at < bytes.byteLength; at += MEMORY_CHUNK) await sink.write(bytes.subarray(at, at + MEMORY_CHUNK));
    } finally {
      await sink.close();
    }
    return bytes.byteLength;
  }

  async delete(name: string): Promise<void> {
    this.objects.delete(name);
  }

  async list(prefix: string): Promise<string[]> {
    return [...this.objects.keys()].filter((n) => n.startsWith(prefix)).sort();
  }
}
