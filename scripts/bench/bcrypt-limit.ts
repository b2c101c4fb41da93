/**
 * The limit for logins: bcryptjs at the configured cost in a piscina pool of the size the service
 * uses (all its processes together), kept saturated for `seconds`, no HTTP at all. The work per task
 * is what POST /auth does: compareSync against a hash of that cost.
 */
import { existsSync } from 'node:fs'
import bcrypt from 'bcryptjs'
import { Piscina } from 'piscina'

export interface BcryptLimit {
  cost: number
  threads: number
  seconds: number
  hashes: number
  hashesPerSecond: number
  /** Mean time of one hash on one thread (ms). */
  msPerHash: number
}

function workerFile(): string {
  // Compiled by `npm run build` next to this file (dist/scripts/bench/) or, under tsx, the .ts source.
  const js = new URL('./bcrypt-worker.js', import.meta.url)
  if (existsSync(js)) return js.href
  const compiled = new URL('../../dist/scripts/bench/bcrypt-worker.js', import.meta.url)
  if (existsSync(compiled)) return compiled.href
  throw new Error('dist/scripts/bench/bcrypt-worker.js is missing: run `npm run build` first')
}

const hashes = new Map<string, string>()

export async function measureBcryptLimit(
  cost: number,
  threads: number,
  seconds: number,
  password: string
): Promise<BcryptLimit> {
  const key = `${cost}:${password}`
  const hash = hashes.get(key) ?? bcrypt.hashSync(password, cost)
  hashes.set(key, hash)
  const pool = new Piscina({
    filename: workerFile(),
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Number.POSITIVE_INFINITY
  })
  try {
    // Warm every thread (module load, JIT) before the clock starts.
    await Promise.all(Array.from({ length: threads }, () => pool.run({ password, hash })))
    let done = 0
    const started = performance.now()
    const deadline = started + seconds * 1000
    // Two tasks in flight per thread keep the pool saturated; only tasks finished in time count.
    const lane = async () => {
      while (performance.now() < deadline) {
        await pool.run({ password, hash })
        if (performance.now() <= deadline) done++
      }
    }
    await Promise.all(Array.from({ length: threads * 2 }, lane))
    const elapsed = seconds
    return {
      cost,
      threads,
      seconds: elapsed,
      hashes: done,
      hashesPerSecond: done / elapsed,
      msPerHash: (elapsed * 1000 * threads) / Math.max(1, done)
    }
  } finally {
    await pool.destroy()
  }
}
