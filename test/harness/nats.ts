/**
 * Integration-test helpers: a real nats-server (JetStream) per test file / describe block.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { startNatsServer, type RunningNatsServer } from "../../cluster/natsServer.ts";

export interface TestNats {
  url: string;
  server: RunningNatsServer;
  storeDir: string;
  /** Stop (SIGTERM) and start again on the SAME port and store dir; `url`/`server` are updated. */
  restart(): Promise<void>;
}

interface OwnedTestNats extends TestNats {
  dispose(): Promise<void>;
}

async function createTestNats(): Promise<OwnedTestNats> {
  const storeDir = await mkdtemp(join(tmpdir(), "natsvec-test-"));
  let server: RunningNatsServer;
  try {
    server = await startNatsServer({ storeDir });
  } catch (err) {
    await rm(storeDir, { recursive: true, force: true });
    throw err;
  }
  const n: OwnedTestNats = {
    url: server.url,
    server,
    storeDir,
    async restart() {
      const port = n.server.port;
      await n.server.stop();
      n.server = await startNatsServer({ storeDir, port });
      n.url = n.server.url;
    },
    async dispose() {
      try {
        await n.server.stop();
      } finally {
        await rm(storeDir, { recursive: true, force: true, maxRetries: 3 });
      }
    },
  };
  return n;
}

/**
 * Starts a real nats-server on a free port with a temp store dir (under os.tmpdir()/natsvec-test-*),
 * registered with vitest's afterAll so it is stopped and the dir removed even when assertions throw.
 * Call at top level of a describe or test file.
 */
export function useNatsServer(): { get(): TestNats } {
  let current: OwnedTestNats | undefined;
  beforeAll(async () => {
    current = await createTestNats();
  });
  afterAll(async () => {
    const n = current;
    current = undefined;
    await n?.dispose();
  });
  return {
    get(): TestNats {
      if (!current) throw new Error("useNatsServer().get() called outside the describe/file's tests (server not started)");
      return current;
    },
  };
}

/** try/finally version: the server is stopped and its store dir removed when `fn` settles. */
export async function withNatsServer<T>(fn: (n: TestNats) => Promise<T>): Promise<T> {
  const n = await createTestNats();
  try {
    return await fn(n);
  } finally {
    await n.dispose();
  }
}

/**
 * Polls `cond` until it returns something other than undefined/null/false and returns that value.
 * Exceptions thrown by `cond` count as "not yet" (the last one is reported on timeout).
 * Throws `timed out after <N>ms waiting for <what>` after `timeoutMs` (default 10 000).
 */
export async function waitFor<T>(
  cond: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const what = opts.what ?? "condition";
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v !== undefined && v !== null && v !== false) return v as T;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, left)));
  }
  const suffix = lastError === undefined ? "" : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${suffix}`);
}
