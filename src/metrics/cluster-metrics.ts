/**
 * WORKERS>1: each worker keeps its own metrics; the primary serves them all, aggregated by
 * prom-client's AggregatorRegistry (counters and histograms summed, each gauge by its own rule),
 * never one worker's alone. Per scrape the primary asks every serving worker over the cluster's IPC
 * channel.
 *
 * prom-client's own `clusterMetrics()` asks every connected worker, including one still starting
 * (which has no metrics yet and never answers): each scrape then fails after its 5 s timeout,
 * whenever a worker starts or is replaced. Here only workers that are serving are asked; a serving
 * worker that does not answer in time still fails the scrape, rather than make counters seem to
 * drop, and one that exits while asked is left out (its counts went with it).
 */
import type { Worker } from 'node:cluster'
import { AggregatorRegistry, Registry } from 'prom-client'
import type { MetricsSource } from './metrics-server.js'

const REQUEST = 'account-service:metrics-request'
const RESPONSE = 'account-service:metrics-response'

interface Request {
  type: typeof REQUEST
  id: number
}

interface Response {
  type: typeof RESPONSE
  id: number
  metrics?: object[]
  error?: string
}

function isMessage<T extends { type: string }>(message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type
}

/** In a worker: answer the primary's requests with this registry's metrics. */
export function shareWithPrimary(registry: Registry): void {
  process.on('message', (message: unknown) => {
    if (!isMessage<Request>(message, REQUEST)) return
    const reply = (response: Omit<Response, 'type' | 'id'>) =>
      process.send?.({ type: RESPONSE, id: message.id, ...response })
    registry.getMetricsAsJSON().then(
      (metrics) => reply({ metrics }),
      (error: unknown) => reply({ error: error instanceof Error ? error.message : String(error) })
    )
  })
}

/** One worker's metrics; undefined if it exits first. */
function ask(worker: Worker, id: number, timeoutMs: number): Promise<object[] | undefined> {
  return new Promise((resolve, reject) => {
    const finish = () => {
      clearTimeout(timer)
      worker.off('message', onMessage)
      worker.off('exit', onExit)
    }
    const onMessage = (message: unknown) => {
      if (!isMessage<Response>(message, RESPONSE) || message.id !== id) return
      finish()
      if (message.error !== undefined || !message.metrics)
        reject(new Error(`worker ${worker.process.pid}: ${message.error}`))
      else resolve(message.metrics)
    }
    const onExit = () => {
      finish()
      resolve(undefined)
    }
    const timer = setTimeout(() => {
      finish()
      reject(new Error(`worker ${worker.process.pid} did not send its metrics within ${timeoutMs} ms`))
    }, timeoutMs)
    worker.on('message', onMessage)
    worker.once('exit', onExit)
    try {
      worker.send({ type: REQUEST, id } satisfies Request)
    } catch {
      onExit()
    }
  })
}

/** In the primary: the metrics of every worker `serving()` lists, aggregated. */
export function clusterMetricsSource(serving: () => Iterable<Worker>, timeoutMs = 5000): MetricsSource {
  let requests = 0
  return {
    contentType: Registry.PROMETHEUS_CONTENT_TYPE,
    async render() {
      const id = requests++
      const workers = [...serving()].filter((worker) => worker.isConnected())
      if (workers.length === 0) throw new Error('no worker is serving yet')
      const answers = await Promise.all(workers.map((worker) => ask(worker, id, timeoutMs)))
      return AggregatorRegistry.aggregate(answers.filter((answer) => answer !== undefined)).metrics()
    }
  }
}
