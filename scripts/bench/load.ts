/** autocannon, programmatically: one run, with a progress bar on a terminal, summarised. */
import autocannon from 'autocannon'
import type { ResponseStats } from './responses.js'
import type { ServiceLatency } from './service-latency.js'

export interface RunResult {
  reqPerSec: number
  requests: number
  p50: number
  p90: number
  p99: number
  max: number
  /** Connection errors and timeouts. */
  errors: number
  non2xx: number
  statusCodes: Record<string, number>
  seconds: number
  /** Every answer timed and counted, when the run recorded them (scripts/bench/responses.ts). */
  responses?: ResponseStats
  /** Overload runs of issue 16: the service's own count of slow answers over the run. */
  serviceLatency?: ServiceLatency
}

export type LoadOptions = Omit<autocannon.Options, 'url'> & { port: number; title: string }

export async function load({ port, title, ...options }: LoadOptions, progress = true): Promise<RunResult> {
  // Without a callback autocannon returns its instance, which is also a promise of the result.
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    ...options,
    title
  }) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>
  autocannon.track(instance, {
    renderProgressBar: progress && Boolean(process.stderr.isTTY),
    renderResultsTable: false,
    renderLatencyTable: false,
    progressBarString: `  ${title} [:bar] :percent`
  })
  const result = await instance
  const statusCodes: Record<string, number> = {}
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = stat.count ?? 0
  const seconds = result.duration || Number(options.duration ?? 1)
  return {
    reqPerSec: result.requests.total / seconds,
    requests: result.requests.total,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    errors: result.errors,
    non2xx: result.non2xx,
    statusCodes,
    seconds
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
