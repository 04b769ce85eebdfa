#!/usr/bin/env node
// Run before `npm start` / `npm test`: make sure a nats-server binary is available.
// Plain Node ESM, no dependencies. Keep the search order in sync with findNatsServer()
// in cluster/natsServer.ts: $NATSVEC_NATS_SERVER, each dir of $PATH,
// /usr/sbin/nats-server, /usr/local/bin/nats-server.
import { spawnSync } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";

function isExecutableFile(p) {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(name) {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && isExecutableFile(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function findNatsServer() {
  const candidates = [];
  const env = process.env.NATSVEC_NATS_SERVER?.trim();
  if (env) candidates.push(resolve(env));
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir) candidates.push(join(dir, "nats-server"));
  }
  candidates.push("/usr/sbin/nats-server", "/usr/local/bin/nats-server");
  return candidates.find(isExecutableFile);
}

const HELP = [
  "natsvec needs the nats-server binary (NATS with JetStream), but it was not found.",
  "Do one of:",
  "  - Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y nats-server",
  "  - download a release from https://nats.io/download/ (or https://github.com/nats-io/nats-server/releases)",
  "    and put nats-server on your PATH",
  "  - point natsvec at an existing binary:  export NATSVEC_NATS_SERVER=/path/to/nats-server",
  "  - or use an already running NATS server with JetStream enabled:  natsvec ... --nats nats://host:4222",
  "Searched: $NATSVEC_NATS_SERVER, every directory of $PATH, /usr/sbin/nats-server, /usr/local/bin/nats-server.",
].join("\n");

if (findNatsServer()) process.exit(0);

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const aptGet = findOnPath("apt-get");
if (isRoot && aptGet) {
  console.log("natsvec: nats-server not found; installing Debian's nats-server with apt-get...");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = spawnSync(aptGet, ["update", "-qq"], { stdio: "inherit", env });
  if (update.status !== 0) console.error(`natsvec: apt-get update failed (exit ${update.status ?? update.signal})`);
  const install = spawnSync(aptGet, ["install", "-y", "-qq", "nats-server"], { stdio: "inherit", env });
  if (install.status !== 0) console.error(`natsvec: apt-get install nats-server failed (exit ${install.status ?? install.signal})`);
  if (findNatsServer()) process.exit(0);
}

console.error(HELP);
process.exit(1);
