// Entry point of an index worker thread (see pool.ts). Plain JS so it loads
// without a TypeScript loader: it registers tsx's loader scoped to this import
// and runs worker.ts, whether the parent runs under tsx, vitest or plain node
// with tsx merely installed.
const { tsImport } = await import("tsx/esm/api");
await tsImport(new URL("./worker.ts", import.meta.url).href, import.meta.url);
