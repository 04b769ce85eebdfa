/**
 * The actor host: subscribes an actor's endpoints (optionally in a queue
 * group), decodes each request (JSON or msgpack by Content-Type), dispatches
 * it, and replies with the public envelope `{code: 0, data, ...}` or
 * `{code, message}`. Replies larger than the max payload are split into
 * chunks for clients that asked for them (Natsvec-Accept-Chunks), and refused
 * with PayloadTooLarge for the others. Handlers run concurrently; `stop()`
 * unsubscribes and waits for the requests in flight.
 */
import { Effect } from "effect";
import { headers as natsHeaders, type Msg, type MsgHdrs, type Subscription } from "@nats-io/transport-node";
import { decodeBody, DecodeError, encodeBody, type Encoding } from "./codec.ts";
import { HEADERS, MSGPACK } from "../schemas/names.ts";
import { MalformedBody, PayloadTooLarge, toApiError, type ApiError } from "../schemas/errors.ts";
import { Nats, type NatsHandles } from "./services.ts";
import { log } from "./log.ts";
import { registerLocal } from "./localbus.ts";

export interface RequestContext {
  readonly subject: string;
  readonly headers: MsgHdrs | undefined;
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
  stop(): Promise<void>;
}

/** Room left in a message for headers and protocol overhead. */
const HEADROOM_BYTES = 8 * 1024;
const DEFAULT_DEADLINE_MS = 60_000;

export const encodingOf = (h: MsgHdrs | undefined): Encoding =>
  h?.get(HEADERS.contentType)?.toLowerCase().includes("msgpack") ? "msgpack" : "json";

export const errorEnvelope = (e: ApiError) => ({ code: e.code, message: e.message });

const replyHeaders = (encoding: Encoding, chunk?: string): MsgHdrs | undefined => {
  if (encoding === "json" && !chunk) return undefined;
  const h = natsHeaders();
  if (encoding === "msgpack") h.set(HEADERS.contentType, MSGPACK);
  if (chunk) h.set(HEADERS.chunk, chunk);
  return h;
};

const respond = (h: NatsHandles, msg: Msg, envelope: Record<string, unknown>, ctx: RequestContext) => {
  if (!msg.reply) return;
  const allowInt64 = msg.headers?.get(HEADERS.allowInt64) === "true";
  let bytes = encodeBody(envelope, ctx.encoding, allowInt64);
  const limit = h.maxPayload - HEADROOM_BYTES;
  if (bytes.length <= limit) {
    msg.respond(bytes, { headers: replyHeaders(ctx.encoding) });
    return;
  }
  if (msg.headers?.get(HEADERS.acceptChunks) === "1") {
    const count = Math.ceil(bytes.length / limit);
    for (let i = 0; i < count; i++) {
      h.nc.publish(msg.reply, bytes.subarray(i * limit, (i + 1) * limit), {
        headers: replyHeaders(ctx.encoding, `${i}/${count}`),
      });
    }
    return;
  }
  const err = new PayloadTooLarge({
    message: `reply of ${bytes.length} bytes exceeds the NATS max payload (${h.maxPayload} bytes); lower limit or outputFields, or use a client that accepts chunked replies (header ${HEADERS.acceptChunks}: 1)`,
  });
  bytes = encodeBody(errorEnvelope(err), ctx.encoding);
  msg.respond(bytes, { headers: replyHeaders(ctx.encoding) });
};

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

export const serveEndpoints = (h: NatsHandles, endpoints: readonly Endpoint[], actor: string): ServedEndpoints => {
  const inFlight = new Set<Promise<void>>();
  const subs: Subscription[] = [];
  const unregister: (() => void)[] = [];
  const handleMsg = async (ep: Endpoint, msg: Msg) => {
    const encoding = encodingOf(msg.headers);
    const deadlineHeader = Number(msg.headers?.get(HEADERS.deadline));
    const ctx: RequestContext = {
      subject: msg.subject,
      headers: msg.headers,
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
    await sendSoon(h.nc, () => {
      try {
        respond(h, msg, envelope, ctx);
      } catch (e) {
        log.error(`${actor}: could not reply on ${msg.subject}`, e);
      }
    });
  };
  for (const ep of endpoints) {
    const sub = h.nc.subscribe(ep.subject, {
      queue: ep.queue,
      callback: (err, msg) => {
        if (err) {
          log.error(`${actor}: subscription ${ep.subject} failed`, err);
          return;
        }
        const p = handleMsg(ep, msg).finally(() => inFlight.delete(p));
        inFlight.add(p);
      },
    });
    subs.push(sub);
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
    async stop() {
      for (const u of unregister) u();
      await Promise.all(subs.map((s) => s.drain().catch(() => undefined)));
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
