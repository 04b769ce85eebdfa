import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { findNatsServer, freePort } from "../cluster/natsServer.ts";
import { useNatsServer, waitFor } from "../test/harness/nats.ts";
import { DataWire, WireDisconnected, WireError, WireNoResponders, WireTimeout, type WireMsg } from "./wire.ts";
import { JetStreamWal, WalFenced } from "./wal.ts";
import { RequestClient } from "./client.ts";
import { serveEndpoints } from "./host.ts";
import type { NatsHandles } from "./services.ts";

const nats = useNatsServer();
const open: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const c of open.reverse()) await c.close().catch(() => undefined);
});

const wireTo = async (url: string, name = "test") => {
  const w = await DataWire.open({ servers: url, name }, (why) => {
    throw new Error(`wire unusable: ${why}`);
  });
  open.push(w!);
  return w!;
};
const natsJs = async (url: string): Promise<NatsConnection> => {
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  open.push(nc);
  return nc;
};
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const bytes = (n: number, seed: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
};
const text = (m: WireMsg) => Buffer.from(m.data).toString();

describe("data wire", () => {
  it("serves requests from nats.js and makes requests nats.js serves, headers both ways", async () => {
    const url = nats.get().url;
    const w = await wireTo(url);
    const nc = await natsJs(url);
    const seen: string[] = [];
    w.subscribe("wire.echo", { queue: "q" }, (m) => {
      seen.push(`${m.header("x-tag")}|${m.header("X-TAG")}|${m.header("absent")}`);
      w.publish(m.reply!, m.data, { headers: { "Content-Type": "application/msgpack", "X-Len": String(m.data.length) } });
    });
    await w.flush();
    const h = headers();
    h.set("X-Tag", "t1");
    const r = await nc.request("wire.echo", new TextEncoder().encode("hello"), { headers: h, timeout: 2_000 });
    expect(new TextDecoder().decode(r.data)).toBe("hello");
    expect(r.headers?.get("Content-Type")).toBe("application/msgpack");
    expect(r.headers?.get("X-Len")).toBe("5");
    expect(seen).toEqual(["t1|t1|undefined"]);

    nc.subscribe("js.echo", { callback: (_e, m) => void m.respond(new TextEncoder().encode(`${m.headers?.get("A")}:${new TextDecoder().decode(m.data)}`)) });
    await nc.flush();
    const back = await w.request("js.echo", new TextEncoder().encode("x"), { headers: { A: "b" }, timeoutMs: 2_000 });
    expect(text(back)).toBe("b:x");
    expect(back.status).toBeUndefined();
  });

  it("moves large payloads intact, many in flight, across socket chunks", async () => {
    const url = nats.get().url;
    const server = await wireTo(url, "server");
    const client = await wireTo(url, "client");
    server.subscribe("wire.hash", {}, (m) => server.publish(m.reply!, new TextEncoder().encode(sha(m.data))));
    server.subscribe("wire.big", {}, (m) => server.publish(m.reply!, bytes(Number(text(m)), 9)));
    await server.flush();
    // Sizes around the 64 KB socket reads and up to the 1 MiB default max payload.
    const sizes = [0, 1, 65_535, 65_536, 65_537, 200_001, 540_645, 1024 * 1024 - 200];
    const sent = sizes.map((n, i) => bytes(n, i));
    const replies = await Promise.all(sent.map((b) => client.request("wire.hash", b, { timeoutMs: 10_000 })));
    expect(replies.map(text)).toEqual(sent.map(sha));
    const bigs = await Promise.all(sizes.map((n) => client.request("wire.big", new TextEncoder().encode(String(n)), { timeoutMs: 10_000 })));
    expect(bigs.map((m) => sha(m.data))).toEqual(sizes.map((n) => sha(bytes(n, 9))));
  });

  it("refuses a message over the max payload without losing the connection", async () => {
    const w = await wireTo(nats.get().url);
    expect(w.maxPayload).toBe(1024 * 1024);
    expect(() => w.publish("wire.x", new Uint8Array(w.maxPayload + 1))).toThrow(/exceeds the NATS max payload/);
    await expect(w.request("wire.x", new Uint8Array(w.maxPayload), { headers: { A: "1" }, timeoutMs: 1_000 })).rejects.toThrow(WireError);
    expect(() => w.publish("wire x", new Uint8Array(1))).toThrow(/invalid subject/);
    expect(() => w.publish("wire.x", new Uint8Array(1), { headers: { "A\r\nB": "1" } })).toThrow(/invalid header/);
    await w.flush();
    expect(w.isConnected).toBe(true);
  });

  it("tells no responders from a timeout", async () => {
    const w = await wireTo(nats.get().url);
    await expect(w.request("wire.nobody", new Uint8Array(1), { timeoutMs: 2_000 })).rejects.toThrow(WireNoResponders);
    w.subscribe("wire.silent", {}, () => undefined);
    await w.flush();
    await expect(w.request("wire.silent", new Uint8Array(1), { timeoutMs: 200 })).rejects.toThrow(WireTimeout);
  });

  it("appends to a fenced JetStream stream like nats.js does", async () => {
    const url = nats.get().url;
    const w = await wireTo(url);
    const nc = await natsJs(url);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "WIRE_WAL", subjects: ["wirewal.0"], storage: StorageType.File });
    const wal = new JetStreamWal({} as never, jsm, (s) => (s === "wirewal.0" ? "WIRE_WAL" : s === "wirewal.none" ? "WIRE_NONE" : undefined), async () => undefined, w);
    const e1 = bytes(300_000, 1);
    const e2 = bytes(10, 2);
    expect(await wal.append("wirewal.0", e1, 0)).toBe(1);
    expect(await wal.append("wirewal.0", e2, 1)).toBe(2);
    await expect(wal.append("wirewal.0", e2, 1)).rejects.toThrow(WalFenced);
    await expect(wal.append("wirewal.none", e2, 0)).rejects.toThrow(/stream not found/);
    expect((await jsm.streams.info("WIRE_WAL")).state.messages).toBe(2);
    const m = await jsm.streams.getMessage("WIRE_WAL", { seq: 1 });
    expect(sha(m!.data)).toBe(sha(e1));
  });

  it("survives a server restart: waiting requests fail, subscriptions come back", async () => {
    const n = nats.get();
    const w = await wireTo(n.url);
    w.subscribe("wire.after", { queue: "q" }, (m) => w.publish(m.reply!, m.data));
    w.subscribe("wire.hang", {}, () => undefined);
    await w.flush();
    const hanging = w.request("wire.hang", new Uint8Array(1), { timeoutMs: 30_000 }).then(
      () => "answered",
      (e: unknown) => e,
    );
    await n.restart();
    expect(await hanging).toBeInstanceOf(WireDisconnected);
    await waitFor(() => w.isConnected, { what: "the wire to reconnect" });
    expect(w.reconnects).toBeGreaterThanOrEqual(1);
    const nc = await natsJs(n.url);
    const r = await waitFor(() => nc.request("wire.after", new TextEncoder().encode("again"), { timeout: 1_000 }), { what: "the re-subscribed endpoint" });
    expect(new TextDecoder().decode(r.data)).toBe("again");
  });

  it("drains a subscription: later messages are not delivered", async () => {
    const url = nats.get().url;
    const w = await wireTo(url);
    const nc = await natsJs(url);
    let got = 0;
    const sub = w.subscribe("wire.drain", {}, () => void got++);
    await w.flush();
    nc.publish("wire.drain", new Uint8Array(1));
    await nc.flush();
    await waitFor(() => got === 1, { what: "the first message" });
    await sub.drain();
    nc.publish("wire.drain", new Uint8Array(1));
    await nc.flush();
    await w.flush();
    expect(got).toBe(1);
  });

  it("is not used where it cannot speak to the server, and logs in with a user and password", async () => {
    const whys: string[] = [];
    expect(await DataWire.open({ servers: "tls://127.0.0.1:4222", name: "t" }, (why) => whys.push(why))).toBeUndefined();
    const port = await freePort();
    const proc = spawn(findNatsServer()!, ["-a", "127.0.0.1", "-p", String(port), "--user", "natsvec", "--pass", "s3cret"], { stdio: "ignore" });
    try {
      const url = `nats://127.0.0.1:${port}`;
      const ok = await waitFor(() => DataWire.open({ servers: url, user: "natsvec", pass: "s3cret", name: "t" }), { what: "nats-server with auth" });
      open.push(ok!);
      ok!.subscribe("auth.echo", {}, (m) => ok!.publish(m.reply!, m.data));
      expect(text(await ok!.request("auth.echo", new TextEncoder().encode("in"), { timeoutMs: 2_000 }))).toBe("in");
      const inUrl = await DataWire.open({ servers: `nats://natsvec:s3cret@127.0.0.1:${port}`, name: "t" });
      expect(inUrl).toBeDefined();
      await inUrl!.close();
      expect(await DataWire.open({ servers: url, user: "natsvec", pass: "wrong", name: "t" }, (why) => whys.push(why))).toBeUndefined();
      expect(await DataWire.open({ servers: url, name: "t" }, (why) => whys.push(why))).toBeUndefined();
    } finally {
      proc.kill("SIGKILL");
    }
    expect(whys).toEqual([expect.stringMatching(/not all plain nats/), expect.stringMatching(/refused|Authorization/i), expect.stringMatching(/requires credentials/)]);
  });
});

describe("request client over the data wire", () => {
  /** A RequestClient whose bulk wire is a real DataWire; counts what went over it. */
  const clientWith = async (url: string, open?: () => Promise<DataWire | undefined>) => {
    const nc = await natsJs(url);
    let opened = 0;
    const overWire: string[] = [];
    const rc = new RequestClient(nc, 5_000, false, {
      minBytes: 64 * 1024,
      open:
        open ??
        (async () => {
          opened++;
          const w = await wireTo(url, "client");
          const inner = w.requestReplies.bind(w);
          w.requestReplies = (subject, data, opts, onReply) => (overWire.push(subject), inner(subject, data, opts, onReply));
          return w;
        }),
    });
    open_.push(rc);
    return { rc, nc, overWire, opened: () => opened };
  };
  const open_: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const c of open_) await c.close();
  });
  /** An endpoint served by natsvec's host (nats.js side): echoes the body's size, or a reply of `replyBytes` bytes. */
  const serve = async (url: string, subject: string) => {
    const nc = await natsJs(url);
    const h = { nc, maxPayload: nc.info!.max_payload } as unknown as NatsHandles;
    const served = serveEndpoints(h, [{ subject, handle: async (body) => ({ data: { got: (body as { blob: Uint8Array }).blob?.length ?? 0, big: new Uint8Array((body as { replyBytes?: number }).replyBytes ?? 0) } }) }], "test");
    await served.ready;
    open_.push({ close: () => served.stop() });
  };

  it("sends large bodies over the wire, small ones over nats.js, and joins chunked replies", async () => {
    const url = nats.get().url;
    await serve(url, "rc.echo");
    const { rc, overWire, opened } = await clientWith(url);
    expect((await rc.call("rc.echo", { blob: new Uint8Array(10) })).data).toMatchObject({ got: 10 });
    expect(opened()).toBe(0); // not opened for small requests
    const big = await rc.call("rc.echo", { blob: new Uint8Array(300_000), replyBytes: 2_500_000 });
    expect((big.data as { got: number; big: Uint8Array }).got).toBe(300_000);
    expect((big.data as { big: Uint8Array }).big.length).toBe(2_500_000); // three chunks at the 1 MiB max payload
    expect(overWire).toEqual(["rc.echo"]);
    expect(opened()).toBe(1);
    await expect(rc.call("rc.nobody", { blob: new Uint8Array(100_000) }, { timeoutMs: 300 })).rejects.toMatchObject({ code: 1902, message: expect.stringMatching(/nobody serves/) });
    await expect(rc.call("rc.echo", { blob: new Uint8Array(1024 * 1024) })).rejects.toMatchObject({ code: 1903 });
  });

  it("falls back to nats.js when the wire cannot be opened", async () => {
    const url = nats.get().url;
    await serve(url, "rc.echo2");
    let tries = 0;
    const { rc } = await clientWith(url, async () => (tries++, undefined));
    for (let i = 0; i < 2; i++) expect((await rc.call("rc.echo2", { blob: new Uint8Array(100_000) })).data).toMatchObject({ got: 100_000 });
    expect(tries).toBe(1);
  });

  it("does not retry a request whose connection dropped in flight", async () => {
    const url = nats.get().url;
    const { rc } = await clientWith(url);
    let calls = 0;
    const w = await wireTo(url, "slow");
    w.subscribe("rc.slow", {}, () => void calls++); // never answers
    await w.flush();
    const pending = rc.call("rc.slow", { blob: new Uint8Array(100_000) }, { timeoutMs: 20_000 }).then(
      () => "answered",
      (e: unknown) => e,
    );
    await waitFor(() => calls === 1, { what: "the request to arrive" });
    await nats.get().restart();
    expect(await pending).toMatchObject({ code: 65535, message: expect.stringMatching(/may or may not have been applied/) });
    expect(calls).toBe(1);
  });
});
