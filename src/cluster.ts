/**
 * WORKERS=N: a primary process that runs N worker processes sharing the port (node:cluster),
 * replaces a worker that dies, and on SIGTERM stops them all gracefully before exiting.
 *
 * The primary loads no part of the app: it only forks, so its memory stays that of a bare Node.
 * The first worker migrates the database as it starts; the others start once it is listening,
 * so no two processes migrate at once. A first worker that cannot start stops the primary.
 */
import cluster, { type Worker } from 'node:cluster'
import type { Config } from './config/config.js'
import { SHUTDOWN_DEADLINE_MS } from './shutdown.js'

/** The primary's few lines, at info level, in the workers' shape (JSON, or LOG_PRETTY's); quiet above info. */
let quiet = false
let pretty = false
function log(message: string): void {
  if (quiet) return
  if (pretty) console.log(`[${new Date().toTimeString().slice(0, 8)}] INFO (${process.pid}): ${message}`)
  else console.log(JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg: message }))
}

export async function runPrimary(config: Config): Promise<void> {
  quiet = !['info', 'debug', 'trace'].includes(config.logLevel)
  pretty = config.logPretty
  let stopping = false
  const listening = new Set<Worker>()

  if (config.metrics) {
    // The serving workers' metrics, aggregated per scrape; the workers serve none themselves.
    const { host, port } = config.metrics
    const [{ clusterMetricsSource }, { startMetricsServer }] = await Promise.all([
      import('./metrics/cluster-metrics.js'),
      import('./metrics/metrics-server.js')
    ])
    try {
      const server = await startMetricsServer(
        host,
        port,
        clusterMetricsSource(() => listening),
        config.httpTimeouts
      )
      log(`metrics of all ${config.workers} workers at ${server.url}`)
    } catch (error) {
      console.error(
        `Cannot serve metrics on ${host}:${port}: ${error instanceof Error ? error.message : String(error)}`
      )
      process.exit(1)
    }
  }
  const fork = () => {
    const worker = cluster.fork()
    worker.once('listening', () => {
      listening.add(worker)
      if (listening.size === config.workers) log(`all ${config.workers} workers serving`)
    })
    return worker
  }

  cluster.on('exit', (worker, code, signal) => {
    const wasServing = listening.delete(worker)
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0)
      return
    }
    // A worker that never served could not start (bad port, say): its own line says why.
    if (!wasServing) process.exit(1)
    log(`worker ${worker.process.pid} exited (${signal ?? code}); starting another`)
    fork()
  })

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    // `on`, not `once`: a repeated signal must not kill the primary (its workers would then drop
    // their requests on disconnect).
    process.on(signal, () => {
      if (stopping) return
      stopping = true
      log(`${signal}: stopping ${listening.size} workers`)
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
      setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS + 2000).unref()
    })
  }

  // The first worker migrates; the rest follow once it serves.
  fork().once('listening', () => {
    if (stopping) return
    for (let i = 1; i < config.workers; i++) fork()
  })
}
