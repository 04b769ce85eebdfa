/**
 * Typed request client: msgpack on the wire, one muxed inbox subscription per
 * client (like nats.js's own request mux), replies reassembled from chunks,
 * a deadline per call, and retries only for errors marked retriable
 * (ShardUnavailable, Unavailable, ConsistencyTimeout) until the deadline.
 *
 * Large requests (inserts, upserts) can go over a data wire (runtime/wire.ts) opened on first
 * use: the public client does so when it owns its connection, which spares the 540 KB copies
 * nats.js makes of every 1000 x 128 insert. If the wire cannot be opened, or is reconnecting,
 * they go over nats.js like everything else.
 */
import { createInbox, headers as natsHeaders, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { decodeBody, encodeBody } from "./codec.ts";
import { HEADERS, MSGPACK } from "../schemas/names.ts";
import { errorFromCode, isApiError, PayloadTooLarge, toApiError, Unavailable, Unexpected, type ApiError } from "../schemas/errors.ts";
import { localHandler } from "./localbus.ts";
import { WireDisconnected, WireNoResponders, WireTimeout, type DataWire } from "./wire.ts";

/** Where large requests may go: a data wire opened on first use, for bodies of `minBytes` and more. */
export interface BulkWire {
  open(): Promise<DataWire | undefined>;
  readonly minBytes: number;
}

export interface CallOptions {
  /** Total time allowed, retries included. */
  timeoutMs?: number;
  /** Extra headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Retry retriable errors until the deadline (default true). */
  retry?: boolean;
}

export interface Envelope {
  code: number;
  message?: string;
  data?: unknown;
  [k: string]: unknown;
}

interface Pending {
  chunks: Uint8Array[];
  received: number;
  resolve: (bytes: Uint8Array) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

const HEADROOM_BYTES = 8 * 1024;

export class RequestClient {
  private sub: Subscription | undefined;
  private readonly prefix: string;
  private readonly pending = new Map<string, Pending>();
  private seq = 0;

  private wire: Promise<DataWire | undefined> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly defaultTimeoutMs = 30_000,
    /** Deliver to actors served in this process directly (internal clients); the public client never does. */
    private readonly allowLocal = false,
    private readonly bulk?: BulkWire,
  ) {
    this.prefix = createInbox();
  }

  /** The data wire for a body of `size` bytes, when there is one and it is up. */
  private async wireFor(size: number): Promise<DataWire | undefined> {
    if (!this.bulk || size < this.bulk.minBytes) return undefined;
    this.wire ??= this.bulk.open().catch(() => undefined);
    const w = await this.wire;
    return w?.isConnected ? w : undefined;
  }

  /** One attempt over the data wire: like `requestBytes` (chunked replies joined, no responders = empty reply). */
  private requestOnWire(wire: DataWire, subject: string, body: Uint8Array, headers: Record<string, string>, timeoutMs: number): Promise<Uint8Array> {
    const max = wire.maxPayload;
    if (body.length > max - HEADROOM_BYTES) {
      return Promise.reject(new PayloadTooLarge({ message: `request of ${body.length} bytes exceeds the NATS max payload (${max} bytes); split it into smaller batches` }));
    }
    let whole: Uint8Array | undefined;
    const chunks: Uint8Array[] = [];
    let received = 0;
    return wire
      .requestReplies(subject, body, { headers, timeoutMs }, (m) => {
        const chunk = m.header(HEADERS.chunk);
        if (!chunk) {
          whole = m.data;
          return true;
        }
        const [i, n] = chunk.split("/").map(Number) as [number, number];
        chunks[i] = m.data;
        if (++received < n) return false;
        whole = Buffer.concat(chunks);
        return true;
      })
      .then(
        () => whole!,
        (e: unknown) => {
          if (e instanceof WireNoResponders) return new Uint8Array(0);
          if (e instanceof WireTimeout) throw new Unavailable({ message: `no reply on ${subject} within ${timeoutMs} ms` });
          if (e instanceof WireDisconnected)
            throw new Unexpected({ message: `the connection to NATS dropped while a request on ${subject} was in flight; it may or may not have been applied` });
          throw e;
        },
      );
  }

  private ensureSub() {
    if (this.sub) return;
    this.sub = this.nc.subscribe(`${this.prefix}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const token = msg.subject.slice(this.prefix.length + 1);
        const p = this.pending.get(token);
        if (!p) return;
        const chunk = msg.headers?.get(HEADERS.chunk);
        if (!chunk) {
          this.finish(token, p);
          p.resolve(msg.data);
          return;
        }
        const [i, n] = chunk.split("/").map(Number) as [number, number];
        if (p.chunks.length === 0) p.chunks = new Array(n);
        p.chunks[i] = msg.data;
        p.received++;
        if (p.received === n) {
          this.finish(token, p);
          p.resolve(Buffer.concat(p.chunks));
        }
      },
    });
  }

  private finish(token: string, p: Pending) {
    clearTimeout(p.timer);
    this.pending.delete(token);
  }

  /** One attempt: raw bytes in, raw reply bytes out. */
  requestBytes(subject: string, body: Uint8Array, h: MsgHdrs, timeoutMs: number): Promise<Uint8Array> {
    this.ensureSub();
    const max = this.nc.info?.max_payload ?? 1024 * 1024;
    if (body.length > max - HEADROOM_BYTES) {
      return Promise.reject(
        new PayloadTooLarge({
          message: `request of ${body.length} bytes exceeds the NATS max payload (${max} bytes); split it into smaller batches`,
        }),
      );
    }
    const token = (++this.seq).toString(36);
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new Unavailable({ message: `no reply on ${subject} within ${timeoutMs} ms` }));
      }, timeoutMs);
      this.pending.set(token, { chunks: [], received: 0, resolve, reject, timer });
      try {
        this.nc.publish(subject, body, { reply: `${this.prefix}.${token}`, headers: h });
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(token);
        reject(e);
      }
      // No responders: nats-server answers with a 503 status message on the reply subject.
    });
  }

  /** Request with msgpack envelope; returns the envelope (code 0) or throws the typed error. */
  async call(subject: string, body: unknown, opts: CallOptions = {}): Promise<Envelope> {
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    let bytes: Uint8Array | undefined;
    let delayMs = 20;
    for (;;) {
      // Served in this process (same NATS server, exact subject): call it directly.
      const local = this.allowLocal ? localHandler(this.nc.info?.server_id, subject) : undefined;
      if (local) {
        let err: ApiError;
        try {
          const reply = await local(body, { subject, encoding: "msgpack", deadlineMs: deadline });
          return { code: 0, ...reply } as Envelope;
        } catch (e) {
          err = isApiError(e) ? e : toApiError(e);
        }
        const remaining = deadline - Date.now();
        if (!err.retriable || opts.retry === false || remaining <= delayMs) throw err;
        await new Promise((r) => setTimeout(r, delayMs));
        delayMs = Math.min(delayMs * 2, 500);
        continue;
      }
      bytes ??= encodeBody(body, "msgpack");
      const headers: Record<string, string> = {
        [HEADERS.contentType]: MSGPACK,
        [HEADERS.acceptChunks]: "1",
        [HEADERS.deadline]: String(deadline),
        ...opts.headers,
      };
      let err: ApiError;
      try {
        const wire = await this.wireFor(bytes.length);
        const waitMs = Math.max(1, deadline - Date.now());
        let reply: Uint8Array;
        if (wire) reply = await this.requestOnWire(wire, subject, bytes, headers, waitMs);
        else {
          const h = natsHeaders();
          for (const [k, v] of Object.entries(headers)) h.set(k, v);
          reply = await this.requestBytes(subject, bytes, h, waitMs);
        }
        if (reply.length === 0) {
          err = new Unavailable({ message: `nobody serves ${subject}` });
        } else {
          const env = decodeBody(reply, "msgpack") as Envelope;
          if (env.code === 0) return env;
          err = errorFromCode(env.code, env.message ?? "");
        }
      } catch (e) {
        if ((e as ApiError)?.code === undefined) throw e;
        err = e as ApiError;
      }
      const remaining = deadline - Date.now();
      if (!err.retriable || opts.retry === false || remaining <= delayMs) throw err;
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(delayMs * 2, 500);
    }
  }

  /** Fail what is still waiting; close the data wire if one was opened. */
  async close(): Promise<void> {
    this.sub?.unsubscribe();
    this.sub = undefined;
    for (const [token, p] of this.pending) {
      this.finish(token, p);
      p.reject(new Unavailable({ message: "client closed" }));
    }
    const w = this.wire;
    this.wire = undefined;
    await (await w)?.close();
  }
}
