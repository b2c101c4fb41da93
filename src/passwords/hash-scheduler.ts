/**
 * The order in which password hashes reach the thread pool. A hash costs a thread hundreds of
 * milliseconds, so whoever fills a plain queue first makes everyone else wait behind them. Here
 * every client (its address, see client-key.ts) has a queue of its own and may have only a few
 * hashes queued or running at once, and a free thread goes to the waiting client that has asked
 * for and been given the fewest hashes lately: a user logging in during a flood waits for the
 * hashes already running, not for the flood's backlog, and the flooding addresses take turns. Work nobody
 * waits for is never done: a queued hash is dropped when its client hangs up or its deadline passes.
 */
import { problems } from '../errors/problem.js'

/** Who a hash is for, and whether they still wait for it. */
export interface HashContext {
  /** The client's key (clientKeyOf): one address, or one IPv6 /64. */
  client: string
  /** Aborted when the client hangs up: a queued hash is dropped, a running one's result ignored. */
  signal?: AbortSignal
}

export interface HashSchedulerOptions {
  /** Hashes handed to the pool at once: its thread count, so the pool's own queue stays empty. */
  slots: number
  /** Hashes one client may have queued or running; over it, 429. */
  perClient: number
  /** How long a hash may wait for a thread; past it, 503 and the hash never runs. */
  queueTimeoutMs: number
}

/** What the scheduler has done since it started (read by the tests; not yet exported as metrics). */
export interface HashCounts {
  /** Handed to a thread. */
  run: number
  /** Dropped because the client hung up before its hash got a thread. */
  cancelled: number
  /** Dropped from the queue at the deadline (503). */
  timedOut: number
  /** Refused at once: the client had its share queued or running already (429). */
  refused: number
}

/**
 * How long a client's requests and hashes count against it, as a time constant: each weighs 1 at
 * first and e⁻¹ after this long. Long enough to tell a flood (several a second) from a user (one
 * now and then).
 */
const DEMAND_DECAY_MS = 10_000
/** Idle clients whose demand has faded below this are forgotten (after ~45 s for a single request). */
const FORGOTTEN_DEMAND = 0.01
/** Idle clients remembered at most, however recent: a flood from many addresses cannot grow the map without bound. */
const MAX_IDLE_CLIENTS = 10_000

interface Job {
  client: ClientQueue
  work: () => Promise<unknown>
  signal: AbortSignal | undefined
  resolve(value: unknown): void
  reject(error: unknown): void
  timer: NodeJS.Timeout
  onAbort: () => void
}

interface ClientQueue {
  key: string
  waiting: Job[]
  /** Queued plus running. */
  active: number
  /** Requests made (refused ones too) plus hashes run lately, decayed as of `demandAt`. */
  demand: number
  demandAt: number
}

export class HashScheduler {
  /** Every client with hashes queued or running, and idle ones whose demand has not faded yet. */
  private readonly clients = new Map<string, ClientQueue>()
  /** Clients with hashes waiting, longest waiting first among equals. */
  private readonly waitingClients = new Set<ClientQueue>()
  private running = 0
  private waitingCount = 0
  private lastSweep = 0
  private closed = false
  readonly counts: HashCounts = { run: 0, cancelled: 0, timedOut: 0, refused: 0 }

  constructor(private readonly options: HashSchedulerOptions) {}

  /** Hashes waiting for a thread right now. */
  get queueLength(): number {
    return this.waitingCount
  }

  /** Runs `work` when a thread is free and no waiting client has a smaller demand. */
  schedule<T>({ client: key, signal }: HashContext, work: () => Promise<T>): Promise<T> {
    // After close() the pool is gone: a request arriving during shutdown gets a 503, not a 500.
    if (this.closed) return Promise.reject(problems.unavailable('password hashing pool (shutting down)'))
    const now = performance.now()
    this.forgetIdleClients(now)
    const client = this.clients.get(key) ?? { key, waiting: [], active: 0, demand: 0, demandAt: now }
    this.clients.set(key, client)
    addDemand(client, now)
    if (signal?.aborted) {
      this.counts.cancelled++
      return Promise.reject(problems.clientClosedRequest())
    }
    if (client.active >= this.options.perClient) {
      this.counts.refused++
      return Promise.reject(problems.tooManyHashes())
    }
    client.active++
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        client,
        work,
        signal,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer: setTimeout(() => this.drop(job, 'timedOut'), this.options.queueTimeoutMs),
        onAbort: () => this.drop(job, 'cancelled')
      }
      signal?.addEventListener('abort', job.onAbort, { once: true })
      client.waiting.push(job)
      this.waitingCount++
      this.waitingClients.add(client)
      this.pump()
    })
  }

  /** At shutdown: what still waits will never get a thread, so it is answered now. */
  close(): void {
    this.closed = true
    for (const client of this.waitingClients) {
      for (const job of client.waiting.splice(0)) {
        this.unqueue(job)
        client.active--
        job.reject(problems.unavailable('password hashing pool (shutting down)'))
      }
    }
    this.waitingClients.clear()
    this.waitingCount = 0
  }

  /** Takes a job out of the queue before it ran: its client hung up, or its deadline passed. */
  private drop(job: Job, reason: 'cancelled' | 'timedOut'): void {
    const { client } = job
    const index = client.waiting.indexOf(job)
    if (index < 0) return
    client.waiting.splice(index, 1)
    this.waitingCount--
    if (client.waiting.length === 0) this.waitingClients.delete(client)
    this.unqueue(job)
    client.active--
    this.counts[reason]++
    job.reject(
      reason === 'cancelled'
        ? problems.clientClosedRequest()
        : problems.hashQueueTimeout(Math.ceil(this.options.queueTimeoutMs / 1000))
    )
  }

  private unqueue(job: Job): void {
    clearTimeout(job.timer)
    job.signal?.removeEventListener('abort', job.onAbort)
  }

  /** The waiting client with the least demand; among equals, the one waiting longest. */
  private nextClient(): ClientQueue | undefined {
    const now = performance.now()
    let best: ClientQueue | undefined
    let bestDemand = Number.POSITIVE_INFINITY
    for (const client of this.waitingClients) {
      const demand = demandOf(client, now)
      if (demand < bestDemand) {
        best = client
        bestDemand = demand
      }
    }
    return best
  }

  /** Hands jobs to free slots, the least demanding client first. */
  private pump(): void {
    while (this.running < this.options.slots) {
      const client = this.nextClient()
      if (!client) return
      const job = client.waiting.shift()!
      this.waitingCount--
      // To the back of the waiting clients, so that equals take turns.
      this.waitingClients.delete(client)
      if (client.waiting.length) this.waitingClients.add(client)
      this.unqueue(job)
      // What a client is given counts too, so that clients asking alike take turns.
      addDemand(client, performance.now())
      this.running++
      this.counts.run++
      job.work().then(
        (value) => this.finish(job, () => job.resolve(value)),
        (error: unknown) => this.finish(job, () => job.reject(error))
      )
    }
  }

  /** A running hash cannot be stopped; when its client has gone, its result is ignored. */
  private finish(job: Job, settle: () => void): void {
    this.running--
    job.client.active--
    if (job.signal?.aborted) job.reject(problems.clientClosedRequest())
    else settle()
    this.pump()
  }

  /** At most once a second: forgets idle clients whose demand has faded, and the oldest idle ones past the bound. */
  private forgetIdleClients(now: number): void {
    if (now - this.lastSweep < 1000) return
    this.lastSweep = now
    let idle = 0
    for (const [key, client] of this.clients) {
      if (client.active > 0) continue
      if (demandOf(client, now) < FORGOTTEN_DEMAND) this.clients.delete(key)
      else idle++
    }
    // Map order is first-seen order: the idle clients seen longest ago go first.
    for (const [key, client] of this.clients) {
      if (idle <= MAX_IDLE_CLIENTS) break
      if (client.active > 0) continue
      this.clients.delete(key)
      idle--
    }
  }
}

function demandOf(client: ClientQueue, now: number): number {
  return client.demand * Math.exp(-(now - client.demandAt) / DEMAND_DECAY_MS)
}

function addDemand(client: ClientQueue, now: number): void {
  client.demand = demandOf(client, now) + 1
  client.demandAt = now
}
