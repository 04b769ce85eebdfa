/**
 * Minimal structured logging to stderr. Level from NATSVEC_LOG (error|warn|info|debug),
 * read once by the composition root through `setLogLevel`, never deep inside actors.
 */
const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;
export type LogLevel = keyof typeof LEVELS;

let current: LogLevel = "info";
export const setLogLevel = (level: LogLevel) => {
  current = level;
};

const emit = (level: LogLevel, msg: string, err?: unknown) => {
  if (LEVELS[level] > LEVELS[current]) return;
  const detail = err === undefined ? "" : ` ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
  process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} ${msg}${detail}\n`);
};

export const log = {
  error: (msg: string, err?: unknown) => emit("error", msg, err),
  warn: (msg: string, err?: unknown) => emit("warn", msg, err),
  info: (msg: string) => emit("info", msg),
  debug: (msg: string) => emit("debug", msg),
};
