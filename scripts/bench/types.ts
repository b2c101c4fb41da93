/** What a bench run measures: the rows of bench/results.json and the whole file. */
import type { BcryptLimit } from './bcrypt-limit.js'
import type { FloodPlan, FloodResult } from './flood.js'
import type { RunResult } from './load.js'
import type { ResponseStats } from './responses.js'

export interface Row {
  scenario: string
  target: string
  workers: number
  accounts: number
  runs: RunResult[]
  reqPerSec: number
  p50: number
  p99: number
  errors: number
  non2xx: number
  peakRssMb: number
  /** Each process's peak RSS (VmHWM over the runs; the primary first, then the workers), MB. */
  peakRssPerProcessMb?: number[]
  /** Highest sampled proportional set size (shared pages split between processes), MB. */
  peakPssMb: number
  /** What req/s is compared to, and the ratio. */
  limit?: { name: string; value: number; ratio: number }
  /** Read throughput at this size against the same scenario at 1,000 accounts. */
  vsSmall?: number
  mustSucceed: boolean
  note?: string
  /** The load generator's connections (issue 16's scenarios, which run at several). */
  connections?: number
  /** Issue 16: every answer of the runs, timed and counted (scripts/bench/responses.ts). */
  responses?: ResponseStats
  /** Measured without the service (the write limit): no process count, no memory. */
  noHttp?: boolean
}

export interface Machine {
  nproc: number
  cpu: string
  node: string
  memoryGb: number
  loadavg: number[]
}

/** Runs per scenario, seconds per run, warm-up seconds, account counts, and the load generator's shape. */
export interface Plan {
  runs: number
  seconds: number
  bcryptSeconds: number
  warmup: number
  sizes: number[]
  readConnections: number
  storm: { connections: number; rate: number }
  flood: FloodPlan
}

export interface Results {
  runId: string
  mode: 'quick' | 'full'
  date: string
  elapsedSeconds: number
  machine: Machine
  plan: Plan
  /** The service's own reading of its settings at its defaults, and the environment it ran with. */
  service: {
    workers: number
    hashThreads: number
    cost: number
    ttl: number
    /** Connections of each process's database pool (DB_POOL_SIZE, where the service has it). */
    poolSize?: number
    env: Record<string, string>
  }
  bcryptLimits: BcryptLimit[]
  bcryptRuns: BcryptLimit[]
  lifetimePeakRssMb: Record<string, number>
  peakPssMb: Record<string, number>
  rows: Row[]
  /** The login flood of issue 11 (absent when the run did not reach it). */
  flood?: FloodResult
  /** Issue 12: single Redis vs a Redis Cluster, and two instances on the cluster (absent when the run did not reach it). */
  cluster?: ClusterComparison
  /** Issue 16: writes, the read/write mix and overload (absent when the run did not reach it). */
  writes?: WritesComparison
  failures: string[]
}

/** One round of the Redis Cluster comparison: which variant, and its req/s. */
export interface ClusterRound {
  round: number
  variant: 'single' | 'cluster' | 'twoInstances'
  reqPerSec: number
}

/**
 * Issue 12: authenticated GET /user/{username} on MariaDB + one Redis server against MariaDB + a
 * local Redis Cluster (3 masters, 3 replicas), and two instances of the service on that cluster,
 * all in interleaved rounds of one run so the machine's noise hits each alike.
 */
export interface ClusterComparison {
  /** Rounds of each variant: odd rounds single, cluster, two instances; even rounds the reverse. */
  rounds: number
  order: ClusterRound[]
  /** Accounts (each with a live session) each variant reads, out of `accounts` rows in the one database. */
  accountsPerVariant: number
  /** Connections of the load generator; the two instances get half each. */
  connections: number
  nodes: { masters: number[]; replicas: number[]; startupMs: number }
  /** Load average (1, 5, 15 min) just before the first round and just after the last. */
  loadavg: { before: number[]; after: number[] }
  single: Row
  cluster: Row
  /** Both instances' runs merged per round: req/s and requests summed, p50 the mean, p99 and max the higher. */
  twoInstances: Row & { perInstance: RunResult[][] }
  /** cluster / single (median req/s); target ≥ 0.9. */
  ratio: number
  /** two instances (summed) / one instance, both on the cluster. */
  twoVsOne: number
}

/** Issue 16's figures at one connection count: medians of the runs, and their ratios. */
export interface WritesAt {
  connections: number
  /** GET /user/{username}, PUT /user/{username}, the write limit (no HTTP) and the mix, req/s. */
  read?: number
  put?: number
  writeLimit?: number
  mix: number
  /** H = 1 / (0.9 / read + 0.1 / put); target: mix ≥ 0.8 H. */
  harmonic?: number
  /** put / writeLimit; target ≥ 0.7. */
  putVsLimit?: number
  mixVsHarmonic?: number
}

/**
 * Issue 16: PUT against the write limit (the same UPDATE from a bare Kysely loop), the 80/10/10
 * mix against the harmonic mean of pure reads and PUTs, and the answers under overload, all on
 * MariaDB + Redis at the default WORKERS, in interleaved rounds of one run.
 */
export interface WritesComparison {
  rounds: number
  /** Accounts in the database, each with a live session; every request acts as a random one. */
  accounts: number
  workers: number
  /** Connections of each service process's pool, and of the write limit's (WORKERS × pool). */
  poolSize: number
  dbConnections: number
  loadavg: { before: number[]; after: number[] }
  at: WritesAt[]
}
