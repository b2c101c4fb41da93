/** In-flight requests get this long to finish after SIGTERM before a process exits anyway. */
export const SHUTDOWN_DEADLINE_MS = 10_000
