/**
 * The login flood of issue 11, against a service at its shipped limits. Six addresses (127.0.0.2
 * to .7: Linux routes all of 127.0.0.0/8 to lo) send logins for unknown usernames, each at the
 * pace its per-address limit allows, while a seventh (127.0.0.8) logs in to a real account a few
 * times, every 2 s. Before the flood, in the same run: the same login on the idle service, and
 * right after each batch of 30 logins whose clients hang up after 100 ms (had the abandoned ones
 * still hashed, it would wait behind all of them).
 */
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { median } from './load.js'

export interface FloodPlan {
  /** Flooding addresses, and the logins each sends per minute (its RATE_LIMIT_LOGIN_PER_IP). */
  addresses: number
  perAddressPerMinute: number
  /** How long the flood runs before the first measured login, so the queue is as full as it gets. */
  warmupSeconds: number
  /** Measured logins of the seventh address (idle, under the flood, after abandoned batches). */
  logins: number
  /** Requests per abandoned batch, and when their clients hang up. */
  abandoned: number
  abandonAfterMs: number
}

export interface FloodResult {
  plan: FloodPlan
  /** The login on the idle service, right after an abandoned batch, and the seventh address's under the flood (ms). */
  idleMs: number[]
  floodMs: number[]
  afterAbandonedMs: number[]
  idleMedianMs: number
  floodMedianMs: number
  afterAbandonedMedianMs: number
  /** Statuses of those logins (all should be 201), and of the flood's. */
  loginStatuses: Record<string, number>
  floodStatuses: Record<string, number>
}

const SEVENTH = '127.0.0.8'
/**
 * The same login on the idle service, and after the abandoned batches, comes from addresses of
 * its own: a free thread goes to the client that asked least lately (src/passwords/hash-scheduler.ts),
 * so the seventh address starts the flood as a user would, not with ten logins just behind it.
 */
const IDLE_PROBE = '127.0.0.9'
const AFTER_ABANDONED_PROBE = '127.0.0.10'
/** Between the seventh address's logins under the flood. */
const LOGIN_EVERY_MS = 2000

/** One POST on a connection of its own from `from`: its status, or 0 when abandoned or failed. */
function post(port: number, from: string, path: string, json: unknown, abandonAfterMs?: number): Promise<number> {
  const body = JSON.stringify(json)
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        localAddress: from,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
        res.on('error', () => resolve(0))
      }
    )
    req.on('error', () => resolve(0))
    if (abandonAfterMs !== undefined) setTimeout(() => req.destroy(), abandonAfterMs).unref()
    req.end(body)
  })
}

function tally(statuses: number[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1
  return counts
}

export async function loginFlood(
  port: number,
  account: { username: string; password: string },
  plan: FloodPlan,
  log: (line: string) => void
): Promise<FloodResult> {
  const loginStatuses: number[] = []
  const timedLogin = async (from: string) => {
    const started = performance.now()
    loginStatuses.push(await post(port, from, '/auth', account))
    return performance.now() - started
  }

  const idleMs: number[] = []
  for (let i = 0; i < plan.logins; i++) idleMs.push(await timedLogin(IDLE_PROBE))
  log(`  idle: a login ${idleMs.map(Math.round).join(', ')} ms`)

  // Abandoned batches: each from addresses of their own (127.0.1.x), so no per-address share stops them.
  const afterAbandonedMs: number[] = []
  for (let i = 0; i < plan.logins; i++) {
    const batch = Array.from({ length: plan.abandoned }, (_, n) =>
      post(
        port,
        `127.0.1.${n + 1}`,
        '/auth',
        { username: `gone_${i}_${n}`, password: account.password },
        plan.abandonAfterMs
      )
    )
    await sleep(plan.abandonAfterMs)
    afterAbandonedMs.push(await timedLogin(AFTER_ABANDONED_PROBE))
    await Promise.all(batch)
    await sleep(500)
  }
  log(`  after ${plan.abandoned} abandoned requests: a login ${afterAbandonedMs.map(Math.round).join(', ')} ms`)

  let flooding = true
  const floodStatuses: number[] = []
  const everyMs = 60_000 / plan.perAddressPerMinute
  const floods = Array.from({ length: plan.addresses }, async (_, a) => {
    const sent: Promise<void>[] = []
    for (let n = 0; flooding && n < plan.perAddressPerMinute; n++) {
      const from = `127.0.0.${a + 2}`
      sent.push(
        post(port, from, '/auth', { username: `nobody_${a}_${n}`, password: account.password }).then((status) => {
          floodStatuses.push(status)
        })
      )
      await sleep(everyMs)
    }
    await Promise.all(sent)
  })
  // Sent on a clock, each without waiting for the one before: a login stuck behind the flood's
  // backlog must not hold back the next one's start (the flood would be over by then).
  const floodMs = await Promise.all(
    Array.from({ length: plan.logins }, async (_, i) => {
      await sleep(plan.warmupSeconds * 1000 + i * LOGIN_EVERY_MS)
      return timedLogin(SEVENTH)
    })
  )
  flooding = false
  log(
    `  flood of ${plan.addresses} addresses x ${plan.perAddressPerMinute}/min: the seventh address's login ${floodMs.map(Math.round).join(', ')} ms`
  )
  await Promise.all(floods)
  log(`  flood answers: ${JSON.stringify(tally(floodStatuses))}`)
  return {
    plan,
    idleMs,
    floodMs,
    afterAbandonedMs,
    idleMedianMs: median(idleMs),
    floodMedianMs: median(floodMs),
    afterAbandonedMedianMs: median(afterAbandonedMs),
    loginStatuses: tally(loginStatuses),
    floodStatuses: tally(floodStatuses)
  }
}
