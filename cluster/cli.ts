#!/usr/bin/env node
/**
 * The `natsvec` command line.
 *   natsvec standalone [--data DIR] [--nats-port N] [--nats URL] [--root R]
 *   natsvec run <role...> --nats URL [--root R] [--node-id ID]
 *   natsvec status --nats URL
 */
import { parseArgs } from "node:util";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { defaultConfig, openNats, type NatsvecConfig } from "../runtime/services.ts";
import { openStorage } from "../runtime/storage.ts";
import { listNodes } from "../runtime/registry.ts";
import { log, setLogLevel, type LogLevel } from "../runtime/log.ts";
import { tuneHeapGrowth } from "../runtime/gc.ts";
import { findNatsServer, NATS_SERVER_MISSING_HELP, startNatsServer, type RunningNatsServer } from "./natsServer.ts";
import { RUNNABLE_ROLES, startNode, type RunnableRole, type RunningNode } from "./node.ts";

const HELP = `natsvec — a distributed vector database on NATS

Usage:
  natsvec standalone [options]      every role in this process; starts an embedded
                                    nats-server (JetStream) unless --nats is given
  natsvec run <role...> [options]   chosen roles in this process (needs --nats)
                                    roles: ${RUNNABLE_ROLES.join(", ")}
  natsvec status --nats URL         nodes that sent a heartbeat recently
  natsvec help                      this text

Options:
  --data DIR        data directory (standalone; default ./data)
  --nats URL        use this NATS server instead of starting one
  --nats-port N     port of the embedded nats-server (default 4222; 0 = any free port)
  --root R          subject root (default natsvec): API on <root>.api.v2.<category>.<action>
  --node-id ID      node id (default: persisted in the data dir, or random)
  --lease-ttl-ms N  shard/coordinator lease time-to-live (default 10000): how soon a
                    dead owner's shards are taken over by another node
  --segment-max-rows N   seal a shard's growing segments at N rows (default 200000)
  --segment-idle-ms N    ... or when they sat idle this long (default 60000)
  --compact-max-rows N   compaction merges small sealed segments into segments of up to
                    N rows (default 1000000) ...
  --compact-max-mb N     ... and up to N MiB (default 1024)
  --search-workers N     query node search threads (default: one per core); a search
                    of several segments runs on all of them at once
  --no-data-wire    keep inserted rows on nats.js (default: the proxy's API and the WAL
                    appends use natsvec's lean connection where the server allows it)
  --log LEVEL       error | warn | info | debug (default info; env NATSVEC_LOG)

The API is Milvus REST v2 over NATS request/reply, e.g.
  nats req natsvec.api.v2.collections.create '{"collectionName":"demo","dimension":4}'
`;

const fail = (msg: string): never => {
  process.stderr.write(`natsvec: ${msg}\n`);
  process.exit(2);
};

const positiveInt = (flag: string, v: unknown): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) fail(`${flag} must be a positive integer, got ${String(v)}`);
  return n;
};

/** Stable node id for a data dir, so a restarted process takes its own shard leases back at once. */
const nodeIdFor = (dataDir: string): string => {
  const f = join(dataDir, "node-id");
  if (existsSync(f)) return readFileSync(f, "utf8").trim();
  const id = `sa${randomBytes(4).toString("hex")}`;
  writeFileSync(f, id + "\n");
  return id;
};

/** How long a graceful stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 15_000;

/**
 * A nats-server left running by a natsvec that was killed -9 still holds the port and the
 * store: stop it before starting a new one (identified by the pid file and its command line).
 */
const stopOrphanedServer = async (pidFile: string, storeDir: string) => {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  let cmdline = "";
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return; // not running
  }
  if (!cmdline.includes("nats-server") || !cmdline.includes(storeDir)) return;
  log.warn(`natsvec: stopping nats-server ${pid} left over from a previous run on ${storeDir}`);
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    if (!existsSync(`/proc/${pid}`)) return;
  }
  process.kill(pid, "SIGKILL");
};

const onSignals = (stop: () => Promise<void>) => {
  let stopping = false;
  const handler = (sig: string) => {
    if (stopping) {
      process.stderr.write(`natsvec: ${sig} again, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    log.info(`natsvec: ${sig}: stopping (drain)`);
    setTimeout(() => {
      process.stderr.write(`natsvec: graceful stop took longer than ${STOP_DEADLINE_MS} ms, exiting\n`);
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    stop()
      .then(() => process.exit(0))
      .catch((e) => {
        log.error("natsvec: stop failed", e);
        process.exit(1);
      });
  };
  process.on("SIGINT", () => handler("SIGINT"));
  process.on("SIGTERM", () => handler("SIGTERM"));
};

const configFrom = (v: Record<string, string | boolean | undefined>, natsUrl: string, nodeId?: string): NatsvecConfig =>
  defaultConfig({
    natsUrl,
    ...(v.root ? { root: String(v.root) } : {}),
    ...(v["lease-ttl-ms"] ? { leaseTtlMs: positiveInt("--lease-ttl-ms", v["lease-ttl-ms"]) } : {}),
    ...(v["segment-max-rows"] ? { segmentMaxRows: positiveInt("--segment-max-rows", v["segment-max-rows"]) } : {}),
    ...(v["segment-idle-ms"] ? { segmentIdleMs: positiveInt("--segment-idle-ms", v["segment-idle-ms"]) } : {}),
    ...(v["compact-max-rows"] ? { compactMaxRows: positiveInt("--compact-max-rows", v["compact-max-rows"]) } : {}),
    ...(v["compact-max-mb"] ? { compactMaxBytes: positiveInt("--compact-max-mb", v["compact-max-mb"]) * 1024 * 1024 } : {}),
    ...(v["search-workers"] ? { searchWorkers: positiveInt("--search-workers", v["search-workers"]) } : {}),
    ...(v["no-data-wire"] ? { dataWire: false } : {}),
    ...(nodeId ? { nodeId } : v["node-id"] ? { nodeId: String(v["node-id"]) } : {}),
  });

const standalone = async (v: Record<string, string | boolean | undefined>) => {
  const dataDir = resolve(String(v.data ?? "data"));
  mkdirSync(dataDir, { recursive: true });
  let server: RunningNatsServer | undefined;
  let natsUrl = v.nats ? String(v.nats) : undefined;
  if (!natsUrl) {
    if (!findNatsServer()) fail(`nats-server not found.\n${NATS_SERVER_MISSING_HELP}`);
    const port = v["nats-port"] === undefined ? 4222 : Number(v["nats-port"]);
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--nats-port must be a port number, got ${v["nats-port"]}`);
    const storeDir = join(dataDir, "nats");
    const pidFile = join(dataDir, "nats-server.pid");
    await stopOrphanedServer(pidFile, storeDir);
    server = await startNatsServer({ storeDir, port, logFile: join(dataDir, "nats-server.log") });
    writeFileSync(pidFile, `${server.pid}\n`);
    natsUrl = server.url;
  }
  const config = configFrom(v, natsUrl!, v["node-id"] ? undefined : nodeIdFor(dataDir));
  let node: RunningNode;
  try {
    node = await startNode(config, RUNNABLE_ROLES);
  } catch (e) {
    await server?.stop();
    throw e;
  }
  onSignals(async () => {
    await node.stop();
    await server?.stop();
  });
  process.stdout.write(
    `natsvec ready: NATS ${natsUrl}${server ? " (embedded)" : ""}, API ${config.root}.api.v2.<category>.<action>, data ${dataDir}, node ${config.nodeId}\n`,
  );
};

const run = async (roles: string[], v: Record<string, string | boolean | undefined>) => {
  if (roles.length === 0) fail(`run needs at least one role (${RUNNABLE_ROLES.join(", ")})`);
  for (const r of roles) if (!(RUNNABLE_ROLES as readonly string[]).includes(r)) fail(`unknown role '${r}' (roles: ${RUNNABLE_ROLES.join(", ")})`);
  if (!v.nats) fail("run needs --nats URL (the NATS server the cluster shares)");
  const config = configFrom(v, String(v.nats));
  const node = await startNode(config, roles as RunnableRole[]);
  onSignals(() => node.stop());
  process.stdout.write(`natsvec ready: roles ${roles.join(", ")} on ${config.natsUrl}, node ${config.nodeId}\n`);
};

const status = async (v: Record<string, string | boolean | undefined>) => {
  if (!v.nats) fail("status needs --nats URL");
  const config = configFrom(v, String(v.nats));
  const h = await openNats(config, "natsvec-status");
  const storage = await openStorage(h, config);
  const nodes = await listNodes(storage);
  for (const n of nodes.sort((a, b) => a.role.localeCompare(b.role)))
    process.stdout.write(`${n.role.padEnd(14)} ${n.nodeId.padEnd(16)} pid ${n.pid} on ${n.host}, up ${Math.round((Date.now() - n.startedAtMs) / 1000)} s\n`);
  if (nodes.length === 0) process.stdout.write("no natsvec nodes seen\n");
  await h.nc.close();
};

const main = async () => {
  tuneHeapGrowth();
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        data: { type: "string" },
        nats: { type: "string" },
        "nats-port": { type: "string" },
        root: { type: "string" },
        "node-id": { type: "string" },
        log: { type: "string" },
        "lease-ttl-ms": { type: "string" },
        "segment-max-rows": { type: "string" },
        "segment-idle-ms": { type: "string" },
        "compact-max-rows": { type: "string" },
        "compact-max-mb": { type: "string" },
        "search-workers": { type: "string" },
        "no-data-wire": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    return fail(`${(e as Error).message}\n\n${HELP}`);
  }
  const { values: v, positionals } = parsed;
  const level = (v.log ?? process.env.NATSVEC_LOG ?? "info") as LogLevel;
  if (!["error", "warn", "info", "debug"].includes(level)) fail(`--log must be error, warn, info or debug`);
  setLogLevel(level);
  const [cmd, ...rest] = positionals;
  if (v.help || !cmd || cmd === "help") {
    process.stdout.write(HELP);
    return;
  }
  switch (cmd) {
    case "standalone":
      return standalone(v);
    case "run":
      return run(rest, v);
    case "status":
      return status(v);
    default:
      fail(`unknown command '${cmd}'\n\n${HELP}`);
  }
};

main().catch((e) => {
  process.stderr.write(`natsvec: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
