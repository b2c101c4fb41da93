/**
 * Issue 16 on one service (MariaDB + Redis, default WORKERS): pure GET /user/{username} and PUT
 * /user/{username} and the write limit at 64 and 256 connections (callers, for the limit), and the
 * 80/10/10 mix at 64, 256 and 1,024. All in interleaved rounds, odd rounds in one order and even
 * rounds in the reverse, so the noise of this shared machine hits each alike and the ratios compare
 * figures taken side by side. Every HTTP answer is recorded (responses.ts) for the overload targets.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { type RunResult, load } from './load.js'
import { type AccountRequest, accountRequests, harmonicMean, mixed } from './mix.js'
import type { Server } from './proc.js'
import { mergeStats, recordResponses, unexpectedStatuses } from './responses.js'
import type { SeededUser } from './seed.js'
import { latencyBetween, scrapeLatency } from './service-latency.js'
import type { Row, WritesAt } from './types.js'
import type { WriteLimit } from './write-limit.js'

/** Connections of the pure read and PUT scenarios (and callers of the write limit). */
export const WRITE_CONNECTIONS = [64, 256]
/** Connections of the mix; 1,024 is the overload target's. */
export const MIX_CONNECTIONS = [64, 256, 1024]
/** From this many connections on, a refusal (a 503 with Retry-After) is an allowed answer. */
export const OVERLOAD_CONNECTIONS = 256

type Kind = 'read' | 'put' | 'writeLimit' | 'mix'
const BUILD: Record<Exclude<Kind, 'writeLimit'>, (user: SeededUser) => AccountRequest> = {
  read: accountRequests.getUser,
  put: accountRequests.putUser,
  mix: mixed
}

export function scenarioName(kind: Kind, connections: number): string {
  if (kind === 'writeLimit')
    return `write limit: the PUT's UPDATE, no HTTP · ${connections.toLocaleString('en')} callers`
  const name = { read: 'GET /user/{username}', put: 'PUT /user/{username}', mix: 'mix 80/10/10' }[kind]
  return `${name} · ${connections.toLocaleString('en')} conn`
}

type Draft = Omit<Row, 'reqPerSec' | 'p50' | 'p99' | 'errors' | 'non2xx'>

export interface WritesInput {
  server: Server
  /** The service's METRICS_PORT: its own latency histogram, read around each overload run. */
  metricsPort: number
  users: SeededUser[]
  writeLimit: WriteLimit
  plan: { runs: number; seconds: number; warmup: number }
  /** The rows' target, process count and accounts. */
  base: Pick<Row, 'target' | 'workers' | 'accounts'>
  /** Turns a row's runs into medians (and records it, as the other scenarios' rows). */
  record(draft: Draft): Row
  log(line: string): void
}

interface Variant {
  kind: Kind
  connections: number
  runs: RunResult[]
  rss: number
  pss: number
  perProcess: number[]
}

/** Runs the rounds; returns the figures per connection count, and what should not have happened. */
export async function measureWrites(input: WritesInput): Promise<{ at: WritesAt[]; failures: string[] }> {
  const { server, metricsPort, users, writeLimit, plan, log } = input
  const pick = () => users[Math.floor(Math.random() * users.length)]!
  const variant = (kind: Kind, connections: number): Variant => ({
    kind,
    connections,
    runs: [],
    rss: 0,
    pss: 0,
    perProcess: []
  })
  const sequence = [
    ...WRITE_CONNECTIONS.flatMap((c) => (['read', 'put', 'writeLimit', 'mix'] as const).map((k) => variant(k, c))),
    ...MIX_CONNECTIONS.filter((c) => !WRITE_CONNECTIONS.includes(c)).map((c) => variant('mix', c))
  ]

  const http = async (kind: Exclude<Kind, 'writeLimit'>, connections: number, seconds: number, title: string) => {
    const recorder = recordResponses(() => BUILD[kind](pick()))
    // Under overload, also the service's own count of slow answers, to tell its wait from the generator's.
    const before = connections >= OVERLOAD_CONNECTIONS ? await scrapeLatency(metricsPort) : undefined
    const run = await load({ port: server.port, title, connections, duration: seconds, requests: [recorder.request] })
    run.responses = recorder.finish()
    if (before) run.serviceLatency = latencyBetween(before, await scrapeLatency(metricsPort))
    // Requests the service still holds from a large run would slow the next one.
    await sleep(500)
    return run
  }

  // Fresh service, cold account cache and pools: warm each kind of request, and the limit's loop.
  const [first] = WRITE_CONNECTIONS as [number]
  for (const kind of ['read', 'put', 'mix'] as const) await http(kind, first, plan.warmup, `${kind} warm-up`)
  await writeLimit.run(users, first, plan.warmup)

  for (let round = 1; round <= plan.runs; round++) {
    for (const v of round % 2 ? sequence : [...sequence].reverse()) {
      const name = scenarioName(v.kind, v.connections)
      if (v.kind === 'writeLimit') {
        const run = await writeLimit.run(users, v.connections, plan.seconds)
        v.runs.push(run)
        log(
          `  ${name.padEnd(52)} round ${round}: ${run.reqPerSec.toFixed(1)} updates/s, p50 ${run.p50} ms, p99 ${run.p99} ms, errors ${run.errors}`
        )
        continue
      }
      server.memory.start()
      const run = await http(v.kind, v.connections, plan.seconds, `${name} #${round}`)
      const memory = server.memory.stop()
      v.rss = Math.max(v.rss, memory.rssMb)
      v.pss = Math.max(v.pss, memory.pssMb)
      v.perProcess = memory.processesMb.map((mb, i) => Math.max(mb, v.perProcess[i] ?? 0))
      v.runs.push(run)
      const r = run.responses!
      const service = run.serviceLatency
      const inside = service ? `; by the service's histogram ${service.over1s} of ${service.requests} over 1 s` : ''
      log(
        `  ${name.padEnd(52)} round ${round}: ${run.reqPerSec.toFixed(1)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, max ${Math.round(r.maxMs)} ms, over 1 s ${r.over1s}, unanswered ${r.unanswered}, errors ${run.errors}, ${JSON.stringify(r.statusCodes)}${inside}`
      )
    }
  }

  const failures: string[] = []
  const rows = new Map<Variant, Row>()
  for (const v of sequence) {
    const overload = v.connections >= OVERLOAD_CONNECTIONS
    const responses = v.kind === 'writeLimit' ? undefined : mergeStats(v.runs.map((run) => run.responses!))
    const row = input.record({
      ...input.base,
      ...(v.kind === 'writeLimit' && { target: 'mariadb', noHttp: true }),
      scenario: scenarioName(v.kind, v.connections),
      connections: v.connections,
      runs: v.runs,
      peakRssMb: v.rss,
      peakRssPerProcessMb: v.perProcess,
      peakPssMb: v.pss,
      // Under overload a 503 is an allowed answer; anything else but a 2xx is a failure (below).
      mustSucceed: !overload,
      ...(v.kind === 'writeLimit' && { note: `${writeLimit.dbConnections} database connections` }),
      ...(responses && { responses })
    })
    rows.set(v, row)
    const unexpected = responses ? unexpectedStatuses(responses) : {}
    if (overload && Object.keys(unexpected).length)
      failures.push(`${row.target} ${row.scenario}: answers other than 2xx and 503: ${JSON.stringify(unexpected)}`)
  }

  const find = (kind: Kind, connections: number) =>
    [...rows].find(([v]) => v.kind === kind && v.connections === connections)?.[1]
  const at = MIX_CONNECTIONS.map((connections): WritesAt => {
    const [read, put, limit, mix] = (['read', 'put', 'writeLimit', 'mix'] as const).map((k) => find(k, connections))
    const figures: WritesAt = { connections, mix: mix!.reqPerSec }
    if (!read || !put || !limit) return figures
    const harmonic = harmonicMean(read.reqPerSec, put.reqPerSec)
    put.limit = {
      name: `the write limit (${connections} callers, ${writeLimit.dbConnections} database connections)`,
      value: limit.reqPerSec,
      ratio: put.reqPerSec / limit.reqPerSec
    }
    mix!.limit = { name: 'H of GET /user and PUT (90 / 10)', value: harmonic, ratio: mix!.reqPerSec / harmonic }
    return {
      ...figures,
      read: read.reqPerSec,
      put: put.reqPerSec,
      writeLimit: limit.reqPerSec,
      harmonic,
      putVsLimit: put.limit.ratio,
      mixVsHarmonic: mix!.limit.ratio
    }
  })
  log(
    at
      .map(
        (a) =>
          `  ${a.connections} connections: mix ${a.mix.toFixed(0)} req/s${a.harmonic ? `, H ${a.harmonic.toFixed(0)} (mix/H ${((a.mixVsHarmonic ?? 0) * 100).toFixed(0)} %), PUT ${a.put?.toFixed(0)} vs write limit ${a.writeLimit?.toFixed(0)} (${((a.putVsLimit ?? 0) * 100).toFixed(0)} %)` : ''}`
      )
      .join('\n')
  )
  return { at, failures }
}
