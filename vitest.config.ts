import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", "bench/**", "data/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration files each start their own nats-server; two cores run two files at once.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
