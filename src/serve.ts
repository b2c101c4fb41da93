/**
 * Serves from this process: build the app, listen, and stop cleanly on SIGTERM/SIGINT. With
 * METRICS_PORT set, a process serving alone also serves its metrics there; a cluster worker hands
 * them to the primary, which serves every worker's together (src/cluster.ts).
 */
import cluster from 'node:cluster'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { type Config, type RedisTarget, redact } from './config/config.js'
import type { MetricsServer } from './metrics/metrics-server.js'
import { SHUTDOWN_DEADLINE_MS } from './shutdown.js'

/**
 * Connections the kernel may hold accepted but not yet taken by us. Node's default, 511, overflows
 * when a thousand clients connect at once to one process: the kernel then drops their handshakes
 * and each retries after 1, 3, 7 s, waits no deadline of ours sees (issue 16, WORKERS=1 at 1,024
 * connections: 2,614 dropped). The kernel caps it at net.core.somaxconn (4,096 on Linux ≥ 5.4).
 */
const LISTEN_BACKLOG = 4096

async function exposeMetrics(app: FastifyInstance, config: Config): Promise<MetricsServer | undefined> {
  if (!config.metrics || !app.metrics) return undefined
  if (cluster.isWorker) {
    const { shareWithPrimary } = await import('./metrics/cluster-metrics.js')
    shareWithPrimary(app.metrics)
    return undefined
  }
  const { host, port } = config.metrics
  const { registrySource, startMetricsServer } = await import('./metrics/metrics-server.js')
  try {
    return await startMetricsServer(host, port, registrySource(app.metrics), config.httpTimeouts)
  } catch (error) {
    console.error(`Cannot serve metrics on ${host}:${port}: ${error instanceof Error ? error.message : String(error)}`)
    await app.close()
    process.exit(1)
  }
}

export async function serve(config: Config): Promise<void> {
  const app = await buildApp(config).catch((error: unknown) => {
    console.error(`Cannot start: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  })
  const metricsServer = await exposeMetrics(app, config)

  let stopping = false
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    // `on`, not `once`: a second signal (systemd signals every process, then the primary signals its
    // workers again) must not kill the process with requests in flight; the deadline still holds.
    process.on(signal, () => {
      if (stopping) return
      stopping = true
      app.log.info({ signal }, 'shutting down: finishing requests in flight')
      setTimeout(() => {
        app.log.error('requests still in flight after the shutdown deadline; exiting')
        process.exit(1)
      }, SHUTDOWN_DEADLINE_MS).unref()
      // Connections that finish a request during shutdown are closed as soon as they are idle.
      setInterval(() => app.server.closeIdleConnections(), 100).unref()
      void metricsServer?.close()
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
    await app.listen({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG })
  } catch (error) {
    console.error(
      `Cannot listen on ${config.host}:${config.port}: ${error instanceof Error ? error.message : String(error)}`
    )
    await app.close()
    process.exit(1)
  }
  app.log.info(
    {
      database: redact(config.databaseUrl),
      sessions: redisDescription(config.redis),
      pid: process.pid,
      ...(metricsServer && { metrics: metricsServer.url })
    },
    'account service ready; docs at /docs'
  )
}

/** Where sessions live, for the start-up line (passwords hidden). */
function redisDescription(target: RedisTarget | undefined): string {
  if (!target) return 'database'
  if (target.kind === 'single') return redact(target.url)
  return `Redis Cluster via ${target.nodes.map(redact).join(', ')}`
}
