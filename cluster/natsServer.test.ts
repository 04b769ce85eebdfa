import { afterEach, describe, expect, test } from "vitest";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { findNatsServer, freePort, NATS_SERVER_GOMEMLIMIT, NATS_SERVER_MISSING_HELP, natsServerEnv, startNatsServer } from "./natsServer.ts";
import { useNatsServer, waitFor, withNatsServer } from "../test/harness/nats.ts";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("startNatsServer", () => {
  const nats = useNatsServer();

  test("JetStream data survives a restart on the same port and store dir", async () => {
    // Proves: a server on a free port accepts a client, JetStream stores a message on disk, and after restart() the same URL serves it again.
    const n = nats.get();
    const urlBefore = n.url;
    let nc = await connect({ servers: n.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "PERSIST", subjects: ["persist.>"] });
      const ack = await jetstream(nc).publish("persist.a", new TextEncoder().encode("hello"));
      expect(ack.seq).toBe(1);
    } finally {
      await nc.close();
    }

    const oldPid = n.server.pid;
    await n.restart();
    expect(n.url).toBe(urlBefore);
    expect(n.server.pid).not.toBe(oldPid);

    nc = await connect({ servers: n.url });
    try {
      const jsm = await jetstreamManager(nc);
      const msg = await jsm.streams.getMessage("PERSIST", { seq: 1 });
      expect(msg?.subject).toBe("persist.a");
      expect(msg?.string()).toBe("hello");
    } finally {
      await nc.close();
    }
  });

  test("runs with a Go memory limit unless the environment sets one", async () => {
    // Proves: the spawned nats-server's environment (read from /proc) carries GOMEMLIMIT, and a user's own value wins.
    await withNatsServer(async (n) => {
      const env = (await readFile(`/proc/${n.server.pid}/environ`, "utf8")).split("\0");
      expect(env).toContain(`GOMEMLIMIT=${process.env.GOMEMLIMIT ?? NATS_SERVER_GOMEMLIMIT}`);
    });
    expect(natsServerEnv({ GOMEMLIMIT: "1GiB", A: "b" })).toEqual({ GOMEMLIMIT: "1GiB", A: "b" });
    expect(natsServerEnv({ A: "b" })).toEqual({ A: "b", GOMEMLIMIT: NATS_SERVER_GOMEMLIMIT });
  });

  test("stop() terminates the process", async () => {
    // Proves: stop() resolves only after the nats-server process is gone (pid no longer alive) and exited resolves.
    await withNatsServer(async (n) => {
      const pid = n.server.pid;
      expect(isAlive(pid)).toBe(true);
      await n.server.stop();
      expect(isAlive(pid)).toBe(false);
      await expect(n.server.exited).resolves.not.toBeUndefined();
      await n.server.stop(); // idempotent
    });
  });

  test("kill9() kills the process hard and the store is still usable", async () => {
    // Proves: kill9() SIGKILLs the server (exit code null = signal) and a new server can start on the same store dir.
    const storeDir = await mkdtemp(join(tmpdir(), "natsvec-test-"));
    try {
      const s = await startNatsServer({ storeDir });
      await s.kill9();
      expect(isAlive(s.pid)).toBe(false);
      expect(await s.exited).toBeNull();
      const s2 = await startNatsServer({ storeDir, port: s.port });
      try {
        const nc = await connect({ servers: s2.url });
        await nc.flush();
        await nc.close();
      } finally {
        await s2.stop();
      }
    } finally {
      await rm(storeDir, { recursive: true, force: true });
    }
  });

  test("maxPayloadBytes is applied via a generated config file", async () => {
    // Proves: maxPayloadBytes reaches the server (nats-server 2.9 has no CLI flag, so -c <storeDir>/nats-server.conf is used) and logFile receives the output.
    const storeDir = await mkdtemp(join(tmpdir(), "natsvec-test-"));
    const logFile = join(storeDir, "server.log");
    try {
      const s = await startNatsServer({ storeDir, maxPayloadBytes: 4 * 1024 * 1024, logFile });
      try {
        const nc = await connect({ servers: s.url });
        try {
          expect(nc.info?.max_payload).toBe(4 * 1024 * 1024);
        } finally {
          await nc.close();
        }
      } finally {
        await s.stop();
      }
      expect(await readFile(join(storeDir, "nats-server.conf"), "utf8")).toContain("max_payload: 4194304");
      const log = await waitFor(async () => {
        const text = await readFile(logFile, "utf8");
        return text.includes("Server is ready") ? text : undefined;
      }, { what: "log file contents", timeoutMs: 2_000 });
      expect(log).toContain("Starting JetStream");
    } finally {
      await rm(storeDir, { recursive: true, force: true });
    }
  });

  test("a non-free explicit port fails with the server's output", async () => {
    // Proves: when an explicit port is taken, startNatsServer rejects with the bind error from the server's log instead of hanging.
    const n = nats.get();
    const storeDir = await mkdtemp(join(tmpdir(), "natsvec-test-"));
    try {
      await expect(startNatsServer({ storeDir, port: n.server.port })).rejects.toThrow(/address already in use/);
    } finally {
      await rm(storeDir, { recursive: true, force: true });
    }
  });
});

describe("findNatsServer / errors", () => {
  const savedEnv = process.env.NATSVEC_NATS_SERVER;
  afterEach(() => {
    if (savedEnv === undefined) delete process.env.NATSVEC_NATS_SERVER;
    else process.env.NATSVEC_NATS_SERVER = savedEnv;
  });

  test("honours NATSVEC_NATS_SERVER", async () => {
    // Proves: an executable named by NATSVEC_NATS_SERVER wins over PATH and the default locations; a non-executable one is skipped.
    const dir = await mkdtemp(join(tmpdir(), "natsvec-test-"));
    try {
      const fake = join(dir, "my-nats-server");
      await writeFile(fake, "#!/bin/sh\nexit 0\n");
      await chmod(fake, 0o755);
      process.env.NATSVEC_NATS_SERVER = fake;
      expect(findNatsServer()).toBe(fake);

      process.env.NATSVEC_NATS_SERVER = join(dir, "does-not-exist");
      expect(findNatsServer()).not.toBe(join(dir, "does-not-exist"));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a bogus binary path rejects with a clear message", async () => {
    // Proves: startNatsServer with a missing binary rejects quickly, naming the path and telling the user how to get nats-server.
    const storeDir = await mkdtemp(join(tmpdir(), "natsvec-test-"));
    try {
      const err = await startNatsServer({ storeDir, binary: "/nonexistent/bin/nats-server" }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toContain("/nonexistent/bin/nats-server");
      expect(err!.message).toContain("apt-get install");
      expect(err!.message).toContain("NATSVEC_NATS_SERVER");
      expect(NATS_SERVER_MISSING_HELP).toContain("--nats");
    } finally {
      await rm(storeDir, { recursive: true, force: true });
    }
  });

  test("freePort returns a bindable port", async () => {
    // Proves: freePort() yields a valid TCP port number.
    const p = await freePort();
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(65536);
  });

  test("waitFor times out with the documented message", async () => {
    // Proves: waitFor polls until the deadline and throws `timed out after Nms waiting for <what>`; it returns the first truthy value.
    await expect(waitFor(() => false, { timeoutMs: 100, intervalMs: 10, what: "nothing" })).rejects.toThrow(
      /^timed out after 100ms waiting for nothing/,
    );
    let i = 0;
    await expect(waitFor(() => (++i >= 3 ? i : undefined), { intervalMs: 1 })).resolves.toBe(3);
  });
});
