/**
 * Bench plumbing: child processes and temp dirs that are always cleaned up
 * (normal exit, error, Ctrl-C, SIGTERM), a text progress bar on stderr,
 * latency statistics and RSS readings from /proc.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// ---------------------------------------------------------------- cleanup

type Cleanup = { name: string; async: () => Promise<void>; sync: () => void };
const cleanups: Cleanup[] = [];
let handlersInstalled = false;
let signalled = false;

/** True once SIGINT/SIGTERM/SIGHUP started the shutdown (errors after that are expected). */
export const interrupted = (): boolean => signalled;
let cleaning: Promise<void> | undefined;

/** Run every registered cleanup (last registered first); idempotent. */
export const cleanupAll = (): Promise<void> => {
  if (!cleaning) {
    cleaning = (async () => {
      while (cleanups.length > 0) {
        const c = cleanups.pop()!;
        try {
          await c.async();
        } catch (e) {
          process.stderr.write(`bench: cleanup of ${c.name} failed: ${(e as Error).message}\n`);
        }
      }
    })();
  }
  return cleaning;
};

const installHandlers = () => {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Last resort: synchronous kills / removals when the process exits anyway.
  process.on("exit", () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        c.sync();
      } catch {
        /* best effort */
      }
    }
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (signalled) {
        process.stderr.write(`\nbench: ${sig} again, exiting now\n`);
        process.exit(130);
      }
      signalled = true;
      process.stderr.write(`\nbench: ${sig}: stopping child processes and removing temp dirs...\n`);
      const force = setTimeout(() => process.exit(130), 15_000);
      force.unref();
      void cleanupAll().finally(() => process.exit(130));
    });
  }
};

export const onCleanup = (name: string, async: () => Promise<void>, sync: () => void = () => undefined): void => {
  installHandlers();
  cleanups.push({ name, async, sync });
};

/** A temp dir removed at the end (even on error / Ctrl-C). */
export const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const rm = () => rmSync(dir, { recursive: true, force: true });
  onCleanup(`temp dir ${dir}`, async () => rm(), rm);
  return dir;
};

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after graceMs; resolves once exited. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: Promise<number | null>;
  /** Last lines of its output. */
  tail(): string;
}

/**
 * Spawn a child that is stopped at cleanup. Resolves when a line of its
 * stdout matches `readyLine` (rejects if it exits first or after timeoutMs).
 */
export const spawnChild = async (
  name: string,
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; readyLine: RegExp; timeoutMs?: number; /** Append all its output here too. */ logFile?: string },
): Promise<{ child: Child; match: RegExpMatchArray }> => {
  const proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  if (opts.logFile) {
    const log = createWriteStream(opts.logFile, { flags: "a" });
    log.write(`---- ${new Date().toISOString()} ${name} pid ${proc.pid} started\n`);
    proc.stdout!.pipe(log, { end: false });
    proc.stderr!.pipe(log, { end: false });
    proc.once("exit", (code, sig) => {
      log.write(`---- ${new Date().toISOString()} ${name} pid ${proc.pid} exited (${sig ?? code})\n`);
      log.end();
    });
  }
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  let exitedFlag = false;
  void exited.then(() => (exitedFlag = true));
  const stop = async (graceMs = 5_000) => {
    if (exitedFlag || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(t);
  };
  onCleanup(
    `${name} (pid ${proc.pid})`,
    () => stop(),
    () => {
      if (!exitedFlag) proc.kill("SIGKILL");
    },
  );
  const child: Child = { proc, pid: proc.pid!, stop, exited, tail: () => lines.slice(-30).join("\n") };
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    let partial = "";
    const timer = setTimeout(() => reject(new Error(`${name} not ready after ${opts.timeoutMs ?? 60_000} ms:\n${child.tail()}`)), opts.timeoutMs ?? 60_000);
    const onData = (chunk: Buffer) => {
      const text = partial + chunk.toString("utf8");
      const ls = text.split("\n");
      partial = ls.pop() ?? "";
      for (const l of ls) {
        lines.push(l);
        if (lines.length > 200) lines.shift();
        const m = l.match(opts.readyLine);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        }
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${code}) before it was ready:\n${child.tail()}`));
    });
  });
  return { child, match };
};

// ---------------------------------------------------------------- /proc

/** VmRSS and VmHWM (peak) of a process in bytes, or undefined if unreadable. */
export const rssOf = (pid: number): { rss: number; peak: number } | undefined => {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(s);
      return m ? Number(m[1]) * 1024 : NaN;
    };
    return { rss: kb("VmRSS"), peak: kb("VmHWM") };
  } catch {
    return undefined;
  }
};

/** CPU time (user + system) a process has used so far, in ms (Linux clock ticks of 10 ms). */
export const cpuMsOf = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
};

// ---------------------------------------------------------------- progress

/** A one-line progress bar on stderr (redrawn at most 5 times a second; every 25% when stderr is not a terminal). */
export class Progress {
  private last = 0;
  private lastTenth = -1;
  private finished = false;
  private readonly start = performance.now();
  private readonly tty = Boolean(process.stderr.isTTY);
  constructor(
    private readonly label: string,
    private readonly total: number,
  ) {
    if (this.tty) this.draw(0);
  }
  update(done: number): void {
    if (this.finished) return;
    if (done >= this.total) return this.done();
    if (this.tty) {
      const now = performance.now();
      if (now - this.last < 200) return;
      this.last = now;
      this.draw(done);
      return;
    }
    const tenth = Math.floor((done / Math.max(1, this.total)) * 4); // quarters
    if (tenth > this.lastTenth && tenth > 0) {
      this.lastTenth = tenth;
      this.draw(done);
    }
  }
  private draw(done: number) {
    const width = 30;
    const frac = this.total === 0 ? 1 : Math.min(1, done / this.total);
    const filled = Math.round(frac * width);
    const secs = (performance.now() - this.start) / 1000;
    const line = `  ${this.label.padEnd(36)} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${this.total} ${secs.toFixed(1)}s`;
    process.stderr.write(this.tty ? `\r${line}` : `${line}\n`);
  }
  done(): void {
    if (this.finished) return;
    this.finished = true;
    this.draw(this.total);
    if (this.tty) process.stderr.write("\n");
  }
}

export const say = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

// ---------------------------------------------------------------- stats

export interface LatencyStats {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
  qps: number;
  wallMs: number;
}

export const percentile = (sorted: readonly number[], p: number): number => {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
};

export const latencyStats = (latenciesMs: readonly number[], wallMs: number): LatencyStats => {
  const s = [...latenciesMs].sort((a, b) => a - b);
  return {
    count: s.length,
    p50Ms: percentile(s, 50),
    p95Ms: percentile(s, 95),
    p99Ms: percentile(s, 99),
    meanMs: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
    qps: (s.length / wallMs) * 1000,
    wallMs,
  };
};

/**
 * Run `count` calls of `fn(i)` with `concurrency` in flight; per-call latency
 * and wall time. Throws the first error.
 */
export const runConcurrent = async <T>(
  count: number,
  concurrency: number,
  fn: (i: number) => Promise<T>,
  progress?: Progress,
): Promise<{ results: T[]; stats: LatencyStats }> => {
  const results = new Array<T>(count);
  const lat = new Array<number>(count);
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const s = performance.now();
      results[i] = await fn(i);
      lat[i] = performance.now() - s;
      progress?.update(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const wall = performance.now() - t0;
  progress?.done();
  return { results, stats: latencyStats(lat, wall) };
};

export const fmtBytes = (b: number): string =>
  b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(2)} GiB` : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`;
