/**
 * WORKERS=N: a primary process that migrates the database once, then runs N worker processes
 * sharing the port (node:cluster), replaces a worker that dies, and on SIGTERM stops them all
 * gracefully before exiting.
 */
import cluster, { type Worker } from 'node:cluster'
import type { Config } from './config/config.js'
import { openDb } from './db/connect.js'
import { migrateToLatest } from './db/migrator.js'
import { clusterMetricsSource } from './metrics/cluster-metrics.js'
import { startMetricsServer } from './metrics/metrics-server.js'
import { SHUTDOWN_DEADLINE_MS } from './serve.js'

/** The primary's few lines, at info level, in the workers' shape (JSON, or LOG_PRETTY's); quiet above info. */
let quiet = false
let pretty = false
function log(message: string): void {
  if (quiet) return
  if (pretty) console.log(`[${new Date().toTimeString().slice(0, 8)}] INFO (${process.pid}): ${message}`)
  else console.log(JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg: message }))
}

async function migrateOnce(config: Config): Promise<void> {
  const db = openDb(config.databaseUrl, { poolSize: 1 })
  try {
    await migrateToLatest(db.kysely)
  } finally {
    await db.kysely.destroy()
  }
}

export async function runPrimary(config: Config): Promise<void> {
  quiet = !['info', 'debug', 'trace'].includes(config.logLevel)
  pretty = config.logPretty
  try {
    await migrateOnce(config)
  } catch (error) {
    console.error(`Cannot start: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  }

  let stopping = false
  const listening = new Set<Worker>()

  if (config.metrics) {
    // The serving workers' metrics, aggregated per scrape; the workers serve none themselves.
    const { host, port } = config.metrics
    try {
      const server = await startMetricsServer(host, port, clusterMetricsSource(() => listening))
      log(`metrics of all ${config.workers} workers at ${server.url}`)
    } catch (error) {
      console.error(`Cannot serve metrics on ${host}:${port}: ${error instanceof Error ? error.message : String(error)}`)
      process.exit(1)
    }
  }
  const fork = () => {
    const worker = cluster.fork()
    worker.once('listening', () => listening.add(worker))
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
    process.once(signal, () => {
      stopping = true
      log(`${signal}: stopping ${listening.size} workers`)
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
      setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS + 2000).unref()
    })
  }

  for (let i = 0; i < config.workers; i++) fork()
}
