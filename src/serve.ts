/** Serves from this process: build the app, listen, and stop cleanly on SIGTERM/SIGINT. */
import { buildApp } from './app.js'
import { type Config, redact } from './config/config.js'

/** In-flight requests get this long to finish after SIGTERM before the process exits anyway. */
export const SHUTDOWN_DEADLINE_MS = 10_000

export async function serve(config: Config): Promise<void> {
  const app = await buildApp(config).catch((error: unknown) => {
    console.error(`Cannot start: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  })

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      app.log.info({ signal }, 'shutting down: finishing requests in flight')
      setTimeout(() => {
        app.log.error('requests still in flight after the shutdown deadline; exiting')
        process.exit(1)
      }, SHUTDOWN_DEADLINE_MS).unref()
      // Connections that finish a request during shutdown are closed as soon as they are idle.
      setInterval(() => app.server.closeIdleConnections(), 100).unref()
      // Stops accepting, waits for requests in flight, then closes the pools (onClose hooks).
      app.close().then(
        () => process.exit(0),
        (error: unknown) => {
          app.log.error({ err: error }, 'shutdown failed')
          process.exit(1)
        }
      )
    })
  }

  try {
    await app.listen({ host: config.host, port: config.port })
  } catch (error) {
    console.error(`Cannot listen on ${config.host}:${config.port}: ${error instanceof Error ? error.message : String(error)}`)
    await app.close()
    process.exit(1)
  }
  app.log.info(
    { database: redact(config.databaseUrl), sessions: config.redisUrl ? redact(config.redisUrl) : 'database', pid: process.pid },
    'account service ready; docs at /docs'
  )
}
