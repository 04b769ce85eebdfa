/**
 * Managing a local nats-server child process (JetStream enabled, store on disk).
 *
 * Used by `natsvec standalone` and by the integration-test harness. The server is
 * started with `-js -sd <storeDir> -a <host> -p <port>`; the monitoring HTTP port is
 * never enabled (nats-server only opens it when `-m`/`http` is given, which we never do).
 * nats-server 2.9 has no `--max_payload` CLI flag, so when `maxPayloadBytes` is given we
 * write `<storeDir>/nats-server.conf` and pass `-c` (CLI flags still override the file).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants, createWriteStream, mkdirSync, statSync, writeFileSync, type WriteStream } from "node:fs";
import { createServer, connect as netConnect } from "node:net";
import { delimiter, join, resolve as resolvePath } from "node:path";

/**
 * Go runtime memory limit of a nats-server natsvec starts, unless the environment sets GOMEMLIMIT.
 * nats-server keeps what it has read (segment and index objects streamed to a query node, WAL
 * ranges to a datanode) in Go's heap until the runtime gets round to returning it: after a 1M x 128
 * restart it sat at ~390 MiB resident without a limit, ~125 MiB at 128MiB. Reading a 650 MB
 * object back (bench/repro/nats-server-memory.ts; resident 5 s later / CPU for the read): 128MiB
 * 123 MiB / 1.5 s, 96MiB 100 MiB / 1.7 s, 80MiB 85 MiB / 2.2 s, 64MiB 70 MiB / 5.4 s (the
 * collector thrashes below the read's working set). 96MiB: no measurable cost to ingest.
 * Soft: above it Go collects more often, never fails.
 */
export const NATS_SERVER_GOMEMLIMIT = "96MiB";

/** The environment nats-server runs with: ours, plus GOMEMLIMIT unless already set. */
export const natsServerEnv = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv =>
  env.GOMEMLIMIT === undefined ? { ...env, GOMEMLIMIT: NATS_SERVER_GOMEMLIMIT } : env;

export interface NatsServerOptions {
  /** JetStream store directory (created if missing). */
  storeDir: string;
  /** Client port; 0 or undefined = pick a free port (retried on a bind race). */
  port?: number;
  /** Bind address; default 127.0.0.1. */
  host?: string;
  /** Path of the nats-server executable; default: findNatsServer(). */
  binary?: string;
  /** Maximum message payload (nats-server default is 1 MiB). */
  maxPayloadBytes?: number;
  /** Append the server's stdout/stderr to this file (otherwise only the last lines are kept in memory). */
  logFile?: string;
}

export interface RunningNatsServer {
  /** e.g. nats://127.0.0.1:41234 */
  url: string;
  port: number;
  pid: number;
  storeDir: string;
  /** SIGTERM, wait for exit, SIGKILL after 5 s. Resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL (simulated crash) and wait for exit. */
  kill9(): Promise<void>;
  /** Resolves with the exit code (null when terminated by a signal) once the process exits. */
  exited: Promise<number | null>;
}

export const NATS_SERVER_MISSING_HELP: string = [
  "natsvec needs the nats-server binary (NATS with JetStream), but it was not found.",
  "Do one of:",
  "  - Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y nats-server",
  "  - download a release from https://nats.io/download/ (or https://github.com/nats-io/nats-server/releases)",
  "    and put nats-server on your PATH",
  "  - point natsvec at an existing binary:  export NATSVEC_NATS_SERVER=/path/to/nats-server",
  "  - or use an already running NATS server with JetStream enabled:  natsvec ... --nats nats://host:4222",
  "Searched: $NATSVEC_NATS_SERVER, every directory of $PATH, /usr/sbin/nats-server, /usr/local/bin/nats-server.",
].join("\n");

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const TAIL_LINES = 50;
const PORT_RETRIES = 3;

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Locates nats-server. Order: $NATSVEC_NATS_SERVER, each directory of $PATH,
 * /usr/sbin/nats-server, /usr/local/bin/nats-server. Only executable regular files
 * (symlinks followed) count; an invalid $NATSVEC_NATS_SERVER falls through to the search.
 */
export function findNatsServer(): string | undefined {
  const candidates: string[] = [];
  const env = process.env.NATSVEC_NATS_SERVER?.trim();
  if (env) candidates.push(resolvePath(env));
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir) candidates.push(join(dir, "nats-server"));
  }
  candidates.push("/usr/sbin/nats-server", "/usr/local/bin/nats-server");
  return candidates.find(isExecutableFile);
}

/** A currently free TCP port on 127.0.0.1 (asks the OS for an ephemeral port; racy by nature). */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        reject(new Error("freePort: could not determine the allocated port"));
        return;
      }
      const port = addr.port;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

// ---------------------------------------------------------------------------
// Children are SIGKILLed if this (parent) process exits while they still run.

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of liveChildren) {
      try {
        child.kill("SIGKILL");
      } catch {
        /* already gone */
      }
    }
  });
  // A fatal signal with no handler terminates Node without running 'exit' handlers.
  // If nobody else handles the signal, kill our children and re-raise it so the default
  // behaviour (terminate) is preserved. If someone else handles it (e.g. a CLI doing a
  // graceful shutdown), leave the children alone: the 'exit' hook still covers them.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(sig) > 1) return;
      for (const child of liveChildren) {
        try {
          child.kill("SIGKILL");
        } catch {
          /* already gone */
        }
      }
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

// ---------------------------------------------------------------------------

function formatHost(host: string): string {
  // Connectable address for a wildcard bind; IPv6 literals need brackets in a URL.
  const h = host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return h.includes(":") ? `[${h}]` : h;
}

function tcpProbe(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = netConnect({ host, port });
    const done = (ok: boolean): void => {
      sock.removeAllListeners();
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class PortInUseError extends Error {}

interface Attempt {
  server: RunningNatsServer;
}

function writeConfig(storeDir: string, maxPayloadBytes: number): string {
  if (!Number.isSafeInteger(maxPayloadBytes) || maxPayloadBytes <= 0 || maxPayloadBytes > 2 ** 31 - 1) {
    throw new Error(`startNatsServer: maxPayloadBytes must be a positive 32-bit integer, got ${maxPayloadBytes}`);
  }
  const lines = [
    "# generated by natsvec (cluster/natsServer.ts); CLI flags override these settings",
    `max_payload: ${maxPayloadBytes}`,
  ];
  // nats-server refuses max_payload > max_pending (default 64 MiB).
  const DEFAULT_MAX_PENDING = 64 * 1024 * 1024;
  if (maxPayloadBytes > DEFAULT_MAX_PENDING) lines.push(`max_pending: ${maxPayloadBytes}`);
  const file = join(storeDir, "nats-server.conf");
  writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

async function startOnce(
  binary: string,
  storeDir: string,
  host: string,
  port: number,
  configFile: string | undefined,
  logFile: string | undefined,
): Promise<Attempt> {
  const args = ["-js", "-sd", storeDir, "-a", host, "-p", String(port)];
  if (configFile) args.unshift("-c", configFile);

  const tail: string[] = [];
  let partial = "";
  let sawReady = false;
  let sawPortInUse = false;
  let log: WriteStream | undefined;
  if (logFile) {
    log = createWriteStream(logFile, { flags: "a" });
    log.on("error", () => {
      /* logging must never crash the parent */
    });
  }
  const onData = (chunk: Buffer): void => {
    log?.write(chunk);
    const text = partial + chunk.toString("utf8");
    const lines = text.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) pushLine(line);
  };
  const pushLine = (line: string): void => {
    if (line.includes("Server is ready")) sawReady = true;
    if (line.includes("address already in use")) sawPortInUse = true;
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
  };
  const lastOutput = (): string => {
    const lines = partial ? [...tail, partial] : tail;
    return lines.length ? lines.join("\n") : "(no output)";
  };

  // Own process group: a Ctrl-C in the terminal reaches natsvec, which drains and then stops the
  // server, instead of the server dying first under a natsvec that still has writes to flush.
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], detached: true, env: natsServerEnv(process.env) });
  let spawnError: Error | undefined;
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once("error", (err) => {
      spawnError = err;
      // 'exit' is not emitted when the spawn itself failed.
      if (child.pid === undefined) {
        liveChildren.delete(child);
        exitInfo = { code: null, signal: null };
        log?.end();
        resolve(null);
      }
    });
    child.once("exit", (code, signal) => {
      liveChildren.delete(child);
      exitInfo = { code, signal };
      resolve(code);
    });
  });
  // Flush the log file after the stdio pipes are drained.
  child.once("close", () => {
    if (partial) {
      pushLine(partial);
      partial = "";
    }
    log?.end();
  });
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  installExitHook();
  liveChildren.add(child);

  const connectHost = formatHost(host).replace(/^\[|\]$/g, "");
  const startedAt = Date.now();
  const deadline = startedAt + READY_TIMEOUT_MS;
  let ready = false;
  while (Date.now() < deadline) {
    if (spawnError && child.pid === undefined) break;
    if (exitInfo) break;
    if (sawReady) {
      ready = await tcpProbe(connectHost, port);
      if (ready) break;
    } else if (Date.now() - startedAt > 1_000 && !sawPortInUse) {
      // Fallback when the "Server is ready" line is not seen (other log settings/versions):
      // accept a listening port once the child has survived a while (a bind failure is fatal
      // and immediate, so after 1 s the listener is ours, not another process's).
      ready = (await tcpProbe(connectHost, port)) && exitInfo === undefined;
      if (ready) break;
    }
    await sleep(25);
  }

  if (!ready) {
    if (!exitInfo) {
      child.kill("SIGKILL");
      await exited;
    }
    // Give the pipes a moment to drain so the error message has the last lines.
    await Promise.race([new Promise((r) => child.once("close", r)), sleep(200)]);
    if (spawnError && child.pid === undefined) {
      const code = (spawnError as NodeJS.ErrnoException).code;
      throw new Error(
        `could not start nats-server binary ${JSON.stringify(binary)}: ${code ?? spawnError.message}\n${NATS_SERVER_MISSING_HELP}`,
      );
    }
    const cmd = [binary, ...args].join(" ");
    if (sawPortInUse) throw new PortInUseError(`nats-server could not bind ${host}:${port}: address already in use\n${lastOutput()}`);
    const why = exitInfo
      ? `exited before becoming ready (code ${exitInfo.code}, signal ${exitInfo.signal})`
      : `was not ready after ${READY_TIMEOUT_MS} ms (killed)`;
    throw new Error(`nats-server ${why}\ncommand: ${cmd}\nlast output:\n${lastOutput()}`);
  }

  const pid = child.pid!;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    if (!stopping) {
      stopping = (async () => {
        if (exitInfo) return;
        child.kill("SIGTERM");
        const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_GRACE_MS).then(() => true)]);
        if (timedOut && !exitInfo) {
          child.kill("SIGKILL");
          await exited;
        }
      })();
    }
    return stopping;
  };
  const kill9 = async (): Promise<void> => {
    if (!exitInfo) child.kill("SIGKILL");
    await exited;
  };

  return {
    server: {
      url: `nats://${formatHost(host)}:${port}`,
      port,
      pid,
      storeDir,
      stop,
      kill9,
      exited,
    },
  };
}

/**
 * Starts nats-server with JetStream storing in `opts.storeDir` and waits (up to 10 s) until it
 * accepts clients. Throws with the last lines of the server's output if it does not come up.
 */
export async function startNatsServer(opts: NatsServerOptions): Promise<RunningNatsServer> {
  const binary = opts.binary ?? findNatsServer();
  if (!binary) throw new Error(NATS_SERVER_MISSING_HELP);
  if (!isExecutableFile(binary)) {
    throw new Error(`nats-server binary ${JSON.stringify(binary)} does not exist or is not an executable file.\n${NATS_SERVER_MISSING_HELP}`);
  }
  const host = opts.host ?? "127.0.0.1";
  const storeDir = resolvePath(opts.storeDir);
  mkdirSync(storeDir, { recursive: true });
  const configFile = opts.maxPayloadBytes !== undefined ? writeConfig(storeDir, opts.maxPayloadBytes) : undefined;
  const autoPort = !opts.port;
  if (opts.port !== undefined && (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535)) {
    throw new Error(`startNatsServer: invalid port ${opts.port}`);
  }

  for (let attempt = 0; ; attempt++) {
    const port = autoPort ? await freePort() : opts.port!;
    try {
      const { server } = await startOnce(binary, storeDir, host, port, configFile, opts.logFile);
      return server;
    } catch (err) {
      if (err instanceof PortInUseError && autoPort && attempt < PORT_RETRIES) continue;
      throw err;
    }
  }
}
