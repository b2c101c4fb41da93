/**
 * Every answer of a run, for the overload targets of issue 16. autocannon's latency histogram holds
 * 2xx answers only and forgets the requests still unanswered when a run ends, and its status counts
 * do not say whether a 503 came with Retry-After. So each request's send time is kept in its
 * autocannon context (one fresh context per request, with one request in flight per connection),
 * and each answer is timed, counted by status and checked here; a request unanswered at the end
 * counts with its age so far.
 */
import type autocannon from 'autocannon'

export interface ResponseStats {
  answered: number
  /** The slowest request, answered or not (ms). */
  maxMs: number
  /** Requests that took over 1 s, answered or still waiting when the run ended. */
  over1s: number
  /** Requests sent and never answered: in flight when the run ended, or lost with their connection. */
  unanswered: number
  statusCodes: Record<string, number>
  /** 503 answers without a Retry-After header. */
  refusalsWithoutRetryAfter: number
}

type Context = { sentAt?: number }
type Built = Omit<autocannon.Request, 'setupRequest' | 'onResponse'>

/** One request entry for autocannon that builds each request with `build` and records its answer. */
export function recordResponses(build: () => Built): { request: autocannon.Request; finish(): ResponseStats } {
  const waiting = new Set<Context>()
  const stats: ResponseStats = {
    answered: 0,
    maxMs: 0,
    over1s: 0,
    unanswered: 0,
    statusCodes: {},
    refusalsWithoutRetryAfter: 0
  }
  const took = (ms: number) => {
    stats.maxMs = Math.max(stats.maxMs, ms)
    if (ms > 1000) stats.over1s++
  }
  const request: autocannon.Request = {
    // autocannon builds each request just before it writes it, so this is its send time.
    setupRequest: (req, context) => {
      const ctx = context as Context
      ctx.sentAt = performance.now()
      waiting.add(ctx)
      return { ...req, ...build() }
    },
    onResponse: (status, _body, context, headers) => {
      const ctx = context as Context
      if (ctx.sentAt === undefined) return
      took(performance.now() - ctx.sentAt)
      waiting.delete(ctx)
      stats.answered++
      stats.statusCodes[status] = (stats.statusCodes[status] ?? 0) + 1
      if (status === 503 && !Object.keys(headers ?? {}).some((name) => name.toLowerCase() === 'retry-after'))
        stats.refusalsWithoutRetryAfter++
    }
  }
  return {
    request,
    finish() {
      const now = performance.now()
      for (const ctx of waiting) took(now - ctx.sentAt!)
      stats.unanswered = waiting.size
      waiting.clear()
      return stats
    }
  }
}

/** Several runs' records as one: counts summed, the slowest the slowest. */
export function mergeStats(all: ResponseStats[]): ResponseStats {
  const statusCodes: Record<string, number> = {}
  for (const stats of all)
    for (const [code, count] of Object.entries(stats.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + count
  const sum = (pick: (stats: ResponseStats) => number) => all.reduce((n, stats) => n + pick(stats), 0)
  return {
    answered: sum((s) => s.answered),
    maxMs: Math.max(0, ...all.map((s) => s.maxMs)),
    over1s: sum((s) => s.over1s),
    unanswered: sum((s) => s.unanswered),
    statusCodes,
    refusalsWithoutRetryAfter: sum((s) => s.refusalsWithoutRetryAfter)
  }
}

/** Answers other than 2xx and 503: under overload the only refusal allowed is a 503. */
export function unexpectedStatuses(stats: ResponseStats): Record<string, number> {
  return Object.fromEntries(
    Object.entries(stats.statusCodes).filter(([code]) => !code.startsWith('2') && code !== '503')
  )
}
