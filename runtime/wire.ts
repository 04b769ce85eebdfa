/**
 * The data wire: a second, minimal NATS connection for the two places every inserted byte passes
 * through — the proxy's public API (an insert's rows arrive here) and the streaming node's WAL
 * appends (they leave here). nats.js spends 2-3 ms of CPU relaying one 540 KB insert (64 KB socket
 * reads copied into a doubling buffer, every outgoing message concatenated into one more buffer);
 * this connection parses the protocol straight off the socket's chunks (a payload that spans
 * chunks is copied once, into a buffer of its exact size) and writes a message as protocol line,
 * headers and payload in one gathered write, without a copy.
 *
 * What it speaks: INFO/CONNECT (user and password), PUB/HPUB, SUB (with queue group)/UNSUB,
 * MSG/HMSG, PING/PONG, +OK/-ERR; request/reply over one wildcard inbox subscription. It
 * reconnects (250 ms apart, over the server list) and re-subscribes; messages published while
 * disconnected wait in a bounded buffer, as nats.js does. It does not speak TLS, nkeys or JWTs:
 * `DataWire.open` returns undefined for such servers and natsvec keeps everything on nats.js.
 * Everything else (KV, Object Store, JetStream management, reads of the WAL, actor-to-actor
 * requests) stays on nats.js.
 *
 * A payload passed to `publish`/`request` is written later without a copy: do not modify it after.
 */
import net from "node:net";
import { randomBytes } from "node:crypto";

export class WireError extends Error {}
/** The connection dropped (or was closed) before the request got its reply. */
export class WireDisconnected extends WireError {}
export class WireTimeout extends WireError {}
/** Nobody subscribes to the subject (the server's 503 status). */
export class WireNoResponders extends WireError {}

export interface WireMsg {
  readonly subject: string;
  readonly reply: string | undefined;
  readonly data: Uint8Array;
  /** Status code of a status message (503 = no responders), else undefined. */
  readonly status: number | undefined;
  /** A header's value (first one), case-insensitive name; undefined when absent. */
  header(name: string): string | undefined;
}

export type WireHeaders = Readonly<Record<string, string>>;

export interface WireSubscription {
  /** Stop receiving; resolves once the server has seen the UNSUB (messages already sent are delivered first). */
  drain(): Promise<void>;
}

interface Sub {
  readonly subject: string;
  readonly queue: string | undefined;
  readonly cb: (m: WireMsg) => void;
}

interface Pending {
  /** A reply arrived; true when it was the last one the request waits for. */
  readonly onReply: (m: WireMsg) => boolean;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Incoming {
  readonly subject: string;
  readonly sid: number;
  readonly reply: string | undefined;
  readonly hdrLen: number;
  readonly total: number;
  /** Allocated once a payload spans chunks; filled up to `have`. */
  buf: Buffer | undefined;
  have: number;
}

const CRLF = Buffer.from("\r\n");
const NL = 10;
/** Published bytes held while reconnecting, at most (like nats.js's reconnect buffer). */
const RECONNECT_BUFFER_BYTES = 32 << 20;
const RECONNECT_WAIT_MS = 250;
const CONNECT_TIMEOUT_MS = 5_000;
const PING_INTERVAL_MS = 30_000;
const MAX_PINGS_OUT = 2;

const badHeaderText = /[\r\n]/;

const encodeHeaders = (h: WireHeaders): Buffer => {
  let s = "NATS/1.0\r\n";
  for (const [k, v] of Object.entries(h)) {
    if (badHeaderText.test(k) || badHeaderText.test(v) || k.includes(":")) throw new WireError(`invalid header ${JSON.stringify(k)}`);
    s += `${k}: ${v}\r\n`;
  }
  return Buffer.from(s + "\r\n", "latin1");
};

class Msg implements WireMsg {
  private parsed: Map<string, string> | undefined;
  readonly status: number | undefined;
  constructor(
    readonly subject: string,
    readonly reply: string | undefined,
    private readonly hdr: Buffer | undefined,
    readonly data: Uint8Array,
  ) {
    if (hdr) {
      // "NATS/1.0[ code[ description]]"
      const end = hdr.indexOf(13);
      const code = Number(hdr.toString("latin1", 9, end < 0 ? hdr.length : end).trim().split(" ")[0]);
      this.status = Number.isInteger(code) && code > 0 ? code : undefined;
    }
  }
  header(name: string): string | undefined {
    if (!this.hdr) return undefined;
    if (!this.parsed) {
      this.parsed = new Map();
      const lines = this.hdr.toString("latin1").split("\r\n");
      for (let i = 1; i < lines.length; i++) {
        const c = lines[i]!.indexOf(":");
        if (c <= 0) continue;
        const k = lines[i]!.slice(0, c).trim().toLowerCase();
        if (!this.parsed.has(k)) this.parsed.set(k, lines[i]!.slice(c + 1).trim());
      }
    }
    return this.parsed.get(name.toLowerCase());
  }
}

export interface WireOptions {
  /** One URL or several, comma-separated (nats://host:port; user:pass@ allowed). */
  readonly servers: string;
  readonly user?: string;
  readonly pass?: string;
  readonly name: string;
}

interface Server {
  readonly host: string;
  readonly port: number;
  readonly user?: string;
  readonly pass?: string;
}

const parseServers = (servers: string): Server[] | undefined => {
  const out: Server[] = [];
  for (const raw of servers.split(",").map((s) => s.trim()).filter(Boolean)) {
    const withScheme = raw.includes("://") ? raw : `nats://${raw}`;
    let u: URL;
    try {
      u = new URL(withScheme);
    } catch {
      return undefined;
    }
    if (u.protocol !== "nats:") return undefined; // tls://, ws:// ...: nats.js only
    out.push({
      host: u.hostname.replace(/^\[|\]$/g, ""),
      port: Number(u.port || 4222),
      user: u.username ? decodeURIComponent(u.username) : undefined,
      pass: u.password ? decodeURIComponent(u.password) : undefined,
    });
  }
  return out.length > 0 ? out : undefined;
};

export class DataWire {
  private sock: net.Socket | undefined;
  private connected = false;
  private closed = false;
  private serverIndex = 0;
  /** Socket chunks not parsed yet (a partial protocol line). */
  private chunks: Buffer[] = [];
  private incoming: Incoming | undefined;
  private readonly subs = new Map<number, Sub>();
  private nextSid = 1;
  private readonly inboxPrefix = `_INBOX.${randomBytes(12).toString("hex")}.`;
  private inboxSid = 0;
  private nextReq = 1;
  private readonly requests = new Map<string, Pending>();
  private pongs: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private pingsOut = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  /** Writes made while disconnected, sent after re-subscribing. */
  private held: (Buffer | Uint8Array)[] = [];
  private heldBytes = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** The server's max payload (bytes). */
  maxPayload = 1024 * 1024;
  /** Times the connection was re-established. */
  reconnects = 0;

  private constructor(
    private readonly servers: Server[],
    private readonly opts: WireOptions,
  ) {}

  /**
   * Connect, or undefined when this server cannot be spoken to with the wire (TLS, nkeys/JWT, a
   * non-nats URL, a refused CONNECT): the reason goes to `onUnusable`.
   */
  static async open(opts: WireOptions, onUnusable: (why: string) => void = () => undefined): Promise<DataWire | undefined> {
    const servers = parseServers(opts.servers);
    if (!servers) {
      onUnusable(`servers ${opts.servers} are not all plain nats:// URLs`);
      return undefined;
    }
    const w = new DataWire(servers, opts);
    try {
      await w.dial(servers[0]!);
    } catch (e) {
      w.closed = true;
      w.sock?.destroy();
      onUnusable((e as Error).message);
      return undefined;
    }
    return w;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Connect to `s`: INFO, CONNECT, PING -> PONG; (re-)subscribe. Rejects on anything the wire cannot handle. */
  private dial(s: Server): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const sock = net.connect({ host: s.host, port: s.port });
      sock.setNoDelay(true);
      let phase: "info" | "pong" | "up" = "info";
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => fail(new WireError(`no answer from ${s.host}:${s.port} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      const fail = (e: Error) => {
        clearTimeout(timer);
        sock.removeAllListeners();
        sock.on("error", () => undefined);
        sock.destroy();
        reject(e);
      };
      const onHandshake = (b: Buffer) => {
        buf = Buffer.concat([buf, b]);
        for (;;) {
          const nl = buf.indexOf(NL);
          if (nl < 0) return;
          const line = buf.toString("latin1", 0, nl).replace(/\r$/, "");
          buf = buf.subarray(nl + 1);
          if (phase === "info") {
            if (!line.startsWith("INFO ")) return fail(new WireError(`unexpected greeting: ${line.slice(0, 80)}`));
            let info: { tls_required?: boolean; nonce?: string; max_payload?: number; headers?: boolean; auth_required?: boolean };
            try {
              info = JSON.parse(line.slice(5));
            } catch {
              return fail(new WireError("unreadable INFO"));
            }
            if (info.tls_required) return fail(new WireError("server requires TLS"));
            if (info.headers === false) return fail(new WireError("server does not support headers"));
            const user = this.opts.user ?? s.user;
            const pass = this.opts.pass ?? s.pass;
            if (info.auth_required && user === undefined) return fail(new WireError("server requires credentials the wire does not speak (nkey/JWT/token)"));
            this.maxPayload = info.max_payload ?? this.maxPayload;
            const connect = { verbose: false, pedantic: false, headers: true, no_responders: true, protocol: 1, lang: "natsvec-wire", version: "1", name: this.opts.name, ...(user !== undefined ? { user, pass } : {}) };
            // The PING's PONG confirms CONNECT was accepted (an auth failure answers -ERR and closes).
            sock.write(`CONNECT ${JSON.stringify(connect)}\r\nPING\r\n`);
            phase = "pong";
          } else if (phase === "pong") {
            if (line === "PONG") {
              phase = "up";
              clearTimeout(timer);
              sock.removeListener("data", onHandshake);
              this.attach(sock, buf);
              resolve();
              return;
            }
            if (line.startsWith("-ERR")) return fail(new WireError(`server refused the connection: ${line.slice(5)}`));
            if (line === "PING") sock.write("PONG\r\n");
          }
        }
      };
      sock.on("data", onHandshake);
      sock.once("error", (e) => fail(new WireError(`cannot connect to ${s.host}:${s.port}: ${e.message}`)));
      sock.once("close", () => fail(new WireError(`connection to ${s.host}:${s.port} closed during the handshake`)));
    });
  }

  /** The handshake is done: take over the socket, subscribe, flush what was held. */
  private attach(sock: net.Socket, rest: Buffer): void {
    this.sock = sock;
    this.chunks = [];
    this.incoming = undefined;
    sock.on("data", (b: Buffer) => this.onData(b));
    sock.on("error", () => undefined); // "close" follows
    sock.on("close", () => this.onClose(sock));
    sock.cork();
    if (this.inboxSid === 0) this.inboxSid = this.nextSid++;
    sock.write(`SUB ${this.inboxPrefix}* ${this.inboxSid}\r\n`);
    for (const [sid, s] of this.subs) sock.write(`SUB ${s.subject}${s.queue ? ` ${s.queue}` : ""} ${sid}\r\n`);
    for (const b of this.held) sock.write(b);
    sock.uncork();
    this.held = [];
    this.heldBytes = 0;
    this.connected = true;
    this.pingsOut = 0;
    this.pingTimer = setInterval(() => this.keepalive(), PING_INTERVAL_MS);
    this.pingTimer.unref();
    if (rest.length > 0) this.onData(rest);
  }

  private keepalive(): void {
    if (!this.connected || !this.sock) return;
    if (this.pingsOut >= MAX_PINGS_OUT) {
      this.sock.destroy(); // stale: reconnect
      return;
    }
    this.pingsOut++;
    this.pongs.push({ resolve: () => void this.pingsOut--, reject: () => undefined });
    this.sock.write("PING\r\n");
  }

  private onClose(sock: net.Socket): void {
    if (this.sock !== sock) return;
    this.connected = false;
    this.sock = undefined;
    clearInterval(this.pingTimer);
    const lost = new WireDisconnected("NATS connection (data wire) lost");
    for (const [, p] of this.requests) {
      clearTimeout(p.timer);
      p.reject(lost);
    }
    this.requests.clear();
    for (const p of this.pongs) p.reject(lost);
    this.pongs = [];
    if (!this.closed) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.reconnectTimer = setTimeout(() => {
      this.serverIndex = (this.serverIndex + 1) % this.servers.length;
      this.dial(this.servers[this.serverIndex]!).then(
        () => {
          this.reconnects++;
          if (this.closed) this.sock?.destroy();
        },
        () => {
          if (!this.closed) this.scheduleReconnect();
        },
      );
    }, RECONNECT_WAIT_MS);
  }

  // -- reading ------------------------------------------------------------

  private onData(b: Buffer): void {
    let off = 0;
    while (off < b.length) {
      const inc = this.incoming;
      if (inc) {
        const need = inc.total + 2 - inc.have; // payload + CRLF
        if (inc.buf === undefined && inc.have === 0 && b.length - off >= need) {
          // The whole message is in this chunk: no copy.
          const body = b.subarray(off, off + inc.total);
          off += need;
          this.incoming = undefined;
          this.deliver(inc, body);
          continue;
        }
        inc.buf ??= Buffer.allocUnsafe(inc.total + 2);
        const take = Math.min(need, b.length - off);
        b.copy(inc.buf, inc.have, off, off + take);
        inc.have += take;
        off += take;
        if (inc.have === inc.total + 2) {
          this.incoming = undefined;
          this.deliver(inc, inc.buf.subarray(0, inc.total));
        }
        continue;
      }
      const nl = b.indexOf(NL, off);
      if (nl < 0) {
        this.chunks.push(b.subarray(off));
        return;
      }
      let line: string;
      if (this.chunks.length > 0) {
        this.chunks.push(b.subarray(off, nl + 1));
        line = Buffer.concat(this.chunks).toString("latin1");
        this.chunks = [];
      } else line = b.toString("latin1", off, nl + 1);
      off = nl + 1;
      this.onLine(line.endsWith("\r\n") ? line.slice(0, -2) : line.slice(0, -1));
    }
  }

  private onLine(line: string): void {
    const op = line.slice(0, 4).toUpperCase();
    if (op === "MSG ") {
      // MSG <subject> <sid> [reply-to] <#bytes>
      const a = line.split(" ").filter(Boolean);
      const reply = a.length === 5 ? a[3] : undefined;
      this.incoming = { subject: a[1]!, sid: Number(a[2]), reply, hdrLen: 0, total: Number(a[a.length - 1]), buf: undefined, have: 0 };
    } else if (op === "HMSG") {
      // HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>
      const a = line.split(" ").filter(Boolean);
      const reply = a.length === 6 ? a[3] : undefined;
      this.incoming = { subject: a[1]!, sid: Number(a[2]), reply, hdrLen: Number(a[a.length - 2]), total: Number(a[a.length - 1]), buf: undefined, have: 0 };
    } else if (op === "PING") this.sock?.write("PONG\r\n");
    else if (op === "PONG") this.pongs.shift()?.resolve(); else if (op === "-ERR") process.emitWarning(`natsvec data wire: server error ${line.slice(5)}`);
    // +OK and INFO (cluster updates) need nothing
  }

  private deliver(inc: Incoming, all: Buffer): void {
    const hdr = inc.hdrLen > 0 ? all.subarray(0, inc.hdrLen) : undefined;
    const msg = new Msg(inc.subject, inc.reply, hdr, inc.hdrLen > 0 ? all.subarray(inc.hdrLen) : all);
    if (inc.sid === this.inboxSid) {
      const p = this.requests.get(inc.subject);
      if (!p) return; // timed out meanwhile
      let done = true;
      let err: Error | undefined;
      if (msg.status === 503) err = new WireNoResponders(`no responders on the subject of request ${inc.subject}`);
      else {
        try {
          done = p.onReply(msg);
        } catch (e) {
          err = e as Error;
        }
      }
      if (!done && !err) return;
      this.requests.delete(inc.subject);
      clearTimeout(p.timer);
      if (err) p.reject(err);
      else p.resolve();
      return;
    }
    const s = this.subs.get(inc.sid);
    if (!s) return;
    try {
      s.cb(msg);
    } catch (e) {
      process.emitWarning(`natsvec data wire: handler of ${s.subject} threw: ${(e as Error).message}`);
    }
  }

  // -- writing ------------------------------------------------------------

  private write(parts: (Buffer | Uint8Array | string)[]): void {
    if (this.closed) throw new WireDisconnected("data wire closed");
    const bufs = parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p));
    const sock = this.sock;
    if (!this.connected || !sock) {
      const n = bufs.reduce((a, b) => a + b.length, 0);
      if (this.heldBytes + n > RECONNECT_BUFFER_BYTES) throw new WireDisconnected("NATS connection (data wire) down and its reconnect buffer full");
      this.held.push(...bufs);
      this.heldBytes += n;
      return;
    }
    if (bufs.length === 1) {
      sock.write(bufs[0]!);
      return;
    }
    sock.cork();
    for (const b of bufs) sock.write(b);
    sock.uncork();
  }

  /**
   * Publish `data`, or the concatenation of its parts (not copied: do not modify them afterwards).
   * Throws when it exceeds the server's max payload.
   */
  publish(subject: string, data: Uint8Array | readonly Uint8Array[], opts: { reply?: string; headers?: WireHeaders } = {}): void {
    const hdr = opts.headers ? encodeHeaders(opts.headers) : undefined;
    const parts = data instanceof Uint8Array ? [data] : data;
    let length = 0;
    for (const p of parts) length += p.length;
    const size = length + (hdr?.length ?? 0);
    if (size > this.maxPayload) throw new WireError(`message of ${size} bytes exceeds the NATS max payload (${this.maxPayload} bytes)`);
    if (/\s/.test(subject) || subject === "") throw new WireError(`invalid subject ${JSON.stringify(subject)}`);
    const reply = opts.reply ? ` ${opts.reply}` : "";
    if (hdr) this.write([`HPUB ${subject}${reply} ${hdr.length} ${size}\r\n`, hdr, ...parts, CRLF]);
    else this.write([`PUB ${subject}${reply} ${length}\r\n`, ...parts, CRLF]);
  }

  /** Publish and wait for the first reply. */
  async request(subject: string, data: Uint8Array | readonly Uint8Array[], opts: { headers?: WireHeaders; timeoutMs: number }): Promise<WireMsg> {
    let reply: WireMsg | undefined;
    await this.requestReplies(subject, data, opts, (m) => {
      reply = m;
      return true;
    });
    return reply!;
  }

  /**
   * Publish and hand each reply to `onReply` until it returns true (a reply in chunks); resolves
   * then. Rejects on timeout (WireTimeout), no responders (WireNoResponders), a lost connection
   * (WireDisconnected) or when `onReply` throws.
   */
  requestReplies(subject: string, data: Uint8Array | readonly Uint8Array[], opts: { headers?: WireHeaders; timeoutMs: number }, onReply: (m: WireMsg) => boolean): Promise<void> {
    const inbox = `${this.inboxPrefix}${this.nextReq++}`;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests.delete(inbox);
        reject(new WireTimeout(`no reply to a request on ${subject} within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      this.requests.set(inbox, { onReply, resolve, reject, timer });
      try {
        this.publish(subject, data, { reply: inbox, headers: opts.headers });
      } catch (e) {
        clearTimeout(timer);
        this.requests.delete(inbox);
        reject(e as Error);
      }
    });
  }

  subscribe(subject: string, opts: { queue?: string }, cb: (m: WireMsg) => void): WireSubscription {
    const sid = this.nextSid++;
    this.subs.set(sid, { subject, queue: opts.queue, cb });
    if (this.connected) this.write([`SUB ${subject}${opts.queue ? ` ${opts.queue}` : ""} ${sid}\r\n`]);
    return {
      drain: async () => {
        if (!this.subs.delete(sid)) return;
        if (!this.connected || this.closed) return;
        this.write([`UNSUB ${sid}\r\n`]);
        await this.flush().catch(() => undefined);
      },
    };
  }

  /** Resolves when the server has processed everything written so far (PING -> PONG). */
  flush(): Promise<void> {
    if (!this.connected || !this.sock) return Promise.reject(new WireDisconnected("data wire not connected"));
    return new Promise<void>((resolve, reject) => {
      this.pongs.push({ resolve, reject });
      this.sock!.write("PING\r\n");
    });
  }

  /** Flush what was written (up to 2 s), then close; requests still waiting fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.connected) {
      await Promise.race([this.flush().catch(() => undefined), new Promise((r) => setTimeout(r, 2_000).unref())]);
    }
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    const sock = this.sock;
    if (sock) {
      await new Promise<void>((resolve) => {
        sock.once("close", () => resolve());
        sock.end();
        setTimeout(() => {
          sock.destroy();
          resolve();
        }, 2_000).unref();
      });
    }
    this.onCloseFinal();
  }

  private onCloseFinal(): void {
    const lost = new WireDisconnected("data wire closed");
    for (const [, p] of this.requests) {
      clearTimeout(p.timer);
      p.reject(lost);
    }
    this.requests.clear();
    this.connected = false;
  }
}
