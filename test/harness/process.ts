/**
 * natsvec as a separate OS process (the real CLI: dist/cli.mjs, built from the sources when stale), for tests that
 * kill -9 processes or split roles across processes. Every process spawned
 * here is killed in afterAll / on exit, even when an assertion throws.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "dist", "cli.mjs");
// The same build `npm start` runs (a no-op unless a source file changed since the last one).
execFileSync(process.execPath, [join(ROOT, "scripts", "build.mjs"), "--if-stale"], { cwd: ROOT, stdio: "inherit" });

export interface NatsvecProcess {
  readonly proc: ChildProcess;
  /** The `natsvec ready: ...` line. */
  readonly ready: Promise<string>;
  output(): string;
  /** SIGKILL the whole process group (natsvec and an embedded nats-server). */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) if (p.pid) try { process.kill(-p.pid, "SIGKILL"); } catch { /* gone */ }
});

export const spawnNatsvec = (args: string[], env: Record<string, string> = {}): NatsvecProcess => {
  const proc = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, NATSVEC_LOG: "warn", ...env },
    detached: true, // own process group, so kill9 reaches the embedded nats-server too
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(proc);
  let out = "";
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const ready = new Promise<string>((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      const line = out.split("\n").find((l) => l.startsWith("natsvec ready:"));
      if (line) resolve(line);
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", (b: Buffer) => (out += b.toString()));
    proc.once("exit", (code) => reject(new Error(`natsvec exited (${code}) before ready:\n${out}`)));
    setTimeout(() => reject(new Error(`natsvec not ready after 30 s:\n${out}`)), 30_000).unref();
  });
  ready.catch(() => undefined);
  const signal = async (sig: NodeJS.Signals) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    try {
      process.kill(sig === "SIGKILL" ? -proc.pid! : proc.pid!, sig);
    } catch {
      /* already gone */
    }
    await exited;
    live.delete(proc);
  };
  return {
    proc,
    ready,
    output: () => out,
    kill9: () => signal("SIGKILL"),
    async stop() {
      const t = setTimeout(() => void signal("SIGKILL"), 10_000);
      await signal("SIGTERM");
      clearTimeout(t);
      // An embedded nats-server left behind by a failed stop would hold the port.
      try {
        process.kill(-proc.pid!, "SIGKILL");
      } catch {
        /* group gone */
      }
    },
  };
};

export const natsUrlOf = (readyLine: string): string => {
  const m = /NATS (nats:\/\/\S+?)[, ]/.exec(readyLine) ?? /on (nats:\/\/\S+?)[, ]/.exec(readyLine);
  if (!m) throw new Error(`no NATS url in '${readyLine}'`);
  return m[1]!;
};
