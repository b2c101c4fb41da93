/**
 * The metrics endpoint, on an HTTP server of its own (METRICS_HOST:METRICS_PORT), so it can be kept
 * off the public port: GET /metrics answers the Prometheus text format; anything else is a 404 or 405.
 */
import { createServer, type Server } from 'node:http'
import type { Registry } from 'prom-client'
import type { HttpTimeouts } from '../config/config.js'
import { httpServerOptions } from '../http/server-timeouts.js'

export interface MetricsSource {
  contentType: string
  /** The exposition text of every metric. */
  render(): Promise<string>
}

/** A process serving alone: its own registry. */
export function registrySource(registry: Registry): MetricsSource {
  return { contentType: registry.contentType, render: () => registry.metrics() }
}

export interface MetricsServer {
  url: string
  close(): Promise<void>
}

function answer(server: Server, source: MetricsSource): void {
  server.on('request', (request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    if (path !== '/metrics') {
      response
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
        .end('Not Found: metrics are at /metrics\n')
      return
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response
        .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
        .end('Method Not Allowed\n')
      return
    }
    source.render().then(
      (text) =>
        response
          .writeHead(200, { 'content-type': source.contentType, 'cache-control': 'no-store' })
          .end(request.method === 'HEAD' ? undefined : text),
      (error: unknown) => {
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
        response.end(`metrics could not be collected: ${error instanceof Error ? error.message : String(error)}\n`)
      }
    )
  })
}

/**
 * Listens on host:port; rejects when it cannot (the port is taken, say). Slow and idle clients are
 * cut off as on the API's port (Node's own bare 408 here: this server is outside the contract).
 */
export async function startMetricsServer(
  host: string,
  port: number,
  source: MetricsSource,
  timeouts: HttpTimeouts
): Promise<MetricsServer> {
  const server = createServer(httpServerOptions(timeouts))
  server.timeout = timeouts.connectionMs
  answer(server, source)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  const shown =
    typeof address === 'object' && address
      ? `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
      : `${host}:${port}`
  return {
    url: `http://${shown}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}
