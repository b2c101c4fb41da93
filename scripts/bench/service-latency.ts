/**
 * The service's own count of slow answers (issue 16's overload targets), from the histogram it
 * serves at /metrics (`http_request_duration_seconds`: from the moment Fastify has the request to
 * its response). Scraped before and after a run, the difference is that run's.
 */
import { request } from 'node:http'

export interface ServiceLatency {
  requests: number
  /** Requests the service took more than 1 s to answer. */
  over1s: number
}

// Greedy up to the last brace: the route label itself holds braces (`/user/{username}`).
const BUCKET = /^http_request_duration_seconds_bucket\{(.*)\} (\S+)$/

/** The histogram summed over every route, method and status: all requests, and those above 1 s. */
export function parseLatency(text: string): ServiceLatency {
  let requests = 0
  let within1s = 0
  for (const line of text.split('\n')) {
    const match = BUCKET.exec(line)
    if (!match) continue
    const le = /(?:^|,)le="([^"]+)"/.exec(match[1]!)?.[1]
    if (le === '+Inf') requests += Number(match[2])
    else if (le === '1') within1s += Number(match[2])
  }
  return { requests, over1s: requests - within1s }
}

export function scrapeLatency(port: number): Promise<ServiceLatency> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', agent: false, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () =>
        res.statusCode === 200 ? resolve(parseLatency(body)) : reject(new Error(`/metrics answered ${res.statusCode}`))
      )
    })
    req.on('timeout', () => req.destroy(new Error('/metrics did not answer in 10 s')))
    req.on('error', reject)
    req.end()
  })
}

export function latencyBetween(before: ServiceLatency, after: ServiceLatency): ServiceLatency {
  return { requests: after.requests - before.requests, over1s: after.over1s - before.over1s }
}
