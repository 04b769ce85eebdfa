/**
 * The actor host: subscribes an actor's endpoints (optionally in a queue
 * group), decodes each request (JSON or msgpack by Content-Type), dispatches
 * it, and replies with the public envelope `{code: 0, data, ...}` or
 * `{code, message}`. Replies larger than the max payload are split into
 * chunks for clients that asked for them (Natsvec-Accept-Chunks), and refused
 * with PayloadTooLarge for the others. Handlers run concurrently; `stop()`
 * unsubscribes and waits for the requests in flight.
 *
 * Endpoints are served over nats.js, or over the data wire (runtime/wire.ts) when the caller asks
 * for it and the connection has one: the proxy's public API, where inserted rows arrive.
 */
import { Effect } from "effect";
import { headers as natsHeaders, type Msg } from "@nats-io/transport-node";
import { decodeBody, DecodeError, encodeBody, type Encoding } from "./codec.ts";
import { HEADERS, MSGPACK } from "../schemas/names.ts";
import { MalformedBody, PayloadTooLarge, toApiError, type ApiError } from "../schemas/errors.ts";
import { Nats, type NatsHandles } from "./services.ts";
import { log } from "./log.ts";
import { registerLocal } from "./localbus.ts";
import type { WireHeaders, WireMsg } from "./wire.ts";

export interface RequestContext {
  readonly subject: string;
  readonly encoding: Encoding;
  /** Epoch ms after which the caller has given up. */
  readonly deadlineMs: number;
}

/** What a handler returns: the envelope fields besides `code` (usually `{ data }`). */
export type ReplyBody = { readonly data?: unknown } & Record<string, unknown>;

export interface Endpoint {
  readonly subject: string;
  readonly queue?: string;
  /** Reused when a subject carries a wildcard: the handler sees the concrete subject in ctx. */
  handle(body: unknown, ctx: RequestContext): Promise<ReplyBody>;
}

export interface ServedEndpoints {
  /** Resolves once the server has the subscriptions (requests sent from then on reach them). */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

/** A request as either connection delivers it. */
interface Incoming {
  readonly subject: string;
  readonly reply: string | undefined;
  readonly data: Uint8Array;
  header(name: string): string | undefined;
}

/** Where replies go: the connection the request came in on. */
interface Replier {
  publish(subject: string, data: Uint8Array, headers: Record<string, string> | undefined): void;
}

/** Room left in a message for headers and protocol overhead. */
const HEADROOM_BYTES = 8 * 1024;
const DEFAULT_DEADLINE_MS = 60_000;

export const encodingOf = (contentType: string | undefined): Encoding => (contentType?.toLowerCase().includes("msgpack") ? "msgpack" : "json");

export const errorEnvelope = (e: ApiError) => ({ code: e.code, message: e.message });

const MSGPACK_REPLY: WireHeaders = { [HEADERS.contentType]: MSGPACK };

const replyHeaders = (encoding: Encoding, chunk?: string): Record<string, string> | undefined => {
  if (!chunk) return encoding === "msgpack" ? MSGPACK_REPLY : undefined;
  return encoding === "msgpack" ? { [HEADERS.contentType]: MSGPACK, [HEADERS.chunk]: chunk } : { [HEADERS.chunk]: chunk };
};

const respond = (maxPayload: number, out: Replier, msg: Incoming, envelope: Record<string, unknown>, ctx: RequestContext) => {
  if (!msg.reply) return;
  const allowInt64 = msg.header(HEADERS.allowInt64) === "true";
  let bytes = encodeBody(envelope, ctx.encoding, allowInt64);
  const limit = maxPayload - HEADROOM_BYTES;
  if (bytes.length <= limit) {
    out.publish(msg.reply, bytes, replyHeaders(ctx.encoding));
    return;
  }
  if (msg.header(HEADERS.acceptChunks) === "1") {
    const count = Math.ceil(bytes.length / limit);
    for (let i = 0; i < count; i++) out.publish(msg.reply, bytes.subarray(i * limit, (i + 1) * limit), replyHeaders(ctx.encoding, `${i}/${count}`));
    return;
  }
  const err = new PayloadTooLarge({
    message: `reply of ${bytes.length} bytes exceeds the NATS max payload (${maxPayload} bytes); lower limit or outputFields, or use a client that accepts chunked replies (header ${HEADERS.acceptChunks}: 1)`,
  });
  bytes = encodeBody(errorEnvelope(err), ctx.encoding);
  out.publish(msg.reply, bytes, replyHeaders(ctx.encoding));
};

const natsJsReplier = (h: NatsHandles): Replier => ({
  publish(subject, data, headers) {
    let hdrs;
    if (headers) {
      hdrs = natsHeaders();
      for (const [k, v] of Object.entries(headers)) hdrs.set(k, v);
    }
    h.nc.publish(subject, data, { headers: hdrs });
  },
});

const fromNatsJs = (m: Msg): Incoming => ({
  subject: m.subject,
  reply: m.reply,
  data: m.data,
  header: (name) => (m.headers ? m.headers.get(name) || undefined : undefined),
});

const fromWire = (m: WireMsg): Incoming => m;

/**
 * Replies leave in bursts: every reply produced during one turn of the event loop is published at its
 * end (setImmediate), so they share one socket write. Under concurrent load that is one write for many
 * replies instead of one each (a write to the NATS socket costs far more than encoding a reply here).
 */
const outboxes = new WeakMap<object, (() => void)[]>();
const sendSoon = (nc: object, send: () => void): Promise<void> =>
  new Promise((resolve) => {
    const run = () => {
      try {
        send();
      } finally {
        resolve();
      }
    };
    const box = outboxes.get(nc);
    if (box) {
      box.push(run);
      return;
    }
    const fresh = [run];
    outboxes.set(nc, fresh);
    setImmediate(() => {
      outboxes.delete(nc);
      for (const f of fresh) f();
    });
  });

/**
 * Serve `endpoints` until `stop()`. `opts.wire`: over the connection's data wire if it has one
 * (the proxy's public API), else over nats.js.
 */
export const serveEndpoints = (h: NatsHandles, endpoints: readonly Endpoint[], actor: string, opts: { wire?: boolean } = {}): ServedEndpoints => {
  const inFlight = new Set<Promise<void>>();
  const drains: (() => Promise<void>)[] = [];
  const unregister: (() => void)[] = [];
  const wire = opts.wire ? h.wire : undefined;
  const out: Replier = wire ? { publish: (subject, data, headers) => wire.publish(subject, data, { headers }) } : natsJsReplier(h);
  const handleMsg = async (ep: Endpoint, msg: Incoming) => {
    const encoding = encodingOf(msg.header(HEADERS.contentType));
    const deadlineHeader = Number(msg.header(HEADERS.deadline));
    const ctx: RequestContext = {
      subject: msg.subject,
      encoding,
      deadlineMs: Number.isFinite(deadlineHeader) && deadlineHeader > 0 ? deadlineHeader : Date.now() + DEFAULT_DEADLINE_MS,
    };
    let envelope: Record<string, unknown>;
    try {
      let body: unknown;
      try {
        body = decodeBody(msg.data, encoding);
      } catch (e) {
        throw new MalformedBody({ message: e instanceof DecodeError ? e.message : String(e) });
      }
      if (body === null || typeof body !== "object" || Array.isArray(body)) {
        throw new MalformedBody({ message: "body must be a JSON object (or msgpack map)" });
      }
      const result = await ep.handle(body, ctx);
      envelope = { code: 0, ...result };
    } catch (e) {
      const err = toApiError(e);
      if (err.code === 65535) log.error(`${actor}: unexpected error on ${msg.subject}`, e);
      envelope = errorEnvelope(err);
    }
    await sendSoon(wire ?? h.nc, () => {
      try {
        respond(wire ? wire.maxPayload : h.maxPayload, out, msg, envelope, ctx);
      } catch (e) {
        log.error(`${actor}: could not reply on ${msg.subject}`, e);
      }
    });
  };
  const track = (ep: Endpoint, msg: Incoming) => {
    const p = handleMsg(ep, msg).finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  for (const ep of endpoints) {
    if (wire) {
      const sub = wire.subscribe(ep.subject, { queue: ep.queue }, (msg) => track(ep, fromWire(msg)));
      drains.push(() => sub.drain());
    } else {
      const sub = h.nc.subscribe(ep.subject, {
        queue: ep.queue,
        callback: (err, msg) => {
          if (err) {
            log.error(`${actor}: subscription ${ep.subject} failed`, err);
            return;
          }
          track(ep, fromNatsJs(msg));
        },
      });
      drains.push(() => sub.drain().catch(() => undefined));
    }
    unregister.push(
      registerLocal(h.nc.info?.server_id, ep.subject, async (body, ctx) => {
        const p = ep.handle(body, ctx);
        const tracked = p.then(
          () => undefined,
          () => undefined,
        );
        inFlight.add(tracked);
        try {
          return await p;
        } finally {
          inFlight.delete(tracked);
        }
      }),
    );
  }
  return {
    ready: (wire ? wire.flush() : h.nc.flush()).catch(() => undefined),
    async stop() {
      for (const u of unregister) u();
      await Promise.all(drains.map((d) => d()));
      await Promise.all([...inFlight]);
    },
  };
};

/** Effect form: endpoints served for the lifetime of the enclosing scope. */
export const serveScoped = (endpoints: readonly Endpoint[], actor: string) =>
  Effect.gen(function* () {
    const h = yield* Nats;
    yield* Effect.acquireRelease(
      Effect.sync(() => serveEndpoints(h, endpoints, actor)),
      (s) => Effect.promise(() => s.stop()),
    );
  });
