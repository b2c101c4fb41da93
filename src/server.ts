/** Entry point: read the configuration, build the app, serve, and stop cleanly on SIGTERM/SIGINT. */
import { buildApp } from './app.js'
import { ConfigError, type Config, loadConfig, redact } from './config/config.js'

/** In-flight requests get this long to finish after SIGTERM before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 10_000

function configOrExit(): Config {
  try {
    return loadConfig()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    console.error(`Configuration error: ${error.message}`)
    process.exit(1)
  }
}

const config = configOrExit()
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
  { database: redact(config.databaseUrl), sessions: config.redisUrl ? redact(config.redisUrl) : 'database' },
  'account service ready; docs at /docs'
)
