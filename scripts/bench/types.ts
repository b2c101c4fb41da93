/** What a bench run measures: the rows of bench/results.json and the whole file. */
import type { BcryptLimit } from './bcrypt-limit.js'
import type { FloodPlan, FloodResult } from './flood.js'
import type { RunResult } from './load.js'

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
  /** Highest sampled proportional set size (shared pages split between processes), MB. */
  peakPssMb: number
  /** What req/s is compared to, and the ratio. */
  limit?: { name: string; value: number; ratio: number }
  /** Read throughput at this size against the same scenario at 1,000 accounts. */
  vsSmall?: number
  mustSucceed: boolean
  note?: string
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
    env: Record<string, string>
  }
  bcryptLimits: BcryptLimit[]
  bcryptRuns: BcryptLimit[]
  lifetimePeakRssMb: Record<string, number>
  peakPssMb: Record<string, number>
  rows: Row[]
  /** The login flood of issue 11 (absent when the run did not reach it). */
  flood?: FloodResult
  failures: string[]
}
