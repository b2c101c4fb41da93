/**
 * Idempotency-Key records in the database (the embedded default), one row per key hash. Taking a
 * key is an INSERT; when the key has a row, an expired one is taken over by one conditional UPDATE
 * (so two requests never both take it), a live one is returned. Expired rows are swept on the way:
 * a bounded batch after a key was taken, once a minute per process (sooner while batches come back full).
 */
import type { IdempotencyKeysRepository } from '../db/idempotency-keys-repository.js'
import {
  type Begun,
  type IdempotencyStore,
  type KeptSignUp,
  type KeyRecord,
  type Lease,
  parseRecord
} from './idempotency-store.js'

/** How often, at most, a process sweeps expired rows, and how many one sweep removes. */
export const SWEEP_EVERY_MS = 60_000
export const SWEEP_BATCH = 100
/** A key whose row keeps vanishing and reappearing between our statements: tell the client it is busy. */
const ATTEMPTS = 3

export interface SqlStoreOptions {
  sweepEveryMs?: number
  /** A sweep that failed: logged, never the request's failure. */
  onSweepError?(error: unknown): void
}

export class SqlIdempotencyStore implements IdempotencyStore {
  private lastSweep = 0
  private readonly sweepEveryMs: number

  constructor(
    private readonly keys: IdempotencyKeysRepository,
    private readonly options: SqlStoreOptions = {}
  ) {
    this.sweepEveryMs = options.sweepEveryMs ?? SWEEP_EVERY_MS
  }

  async begin(keyHash: string, fingerprint: string, runningMs: number): Promise<Begun> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const now = new Date()
      const until = new Date(now.getTime() + Math.ceil(runningMs))
      const lease: Lease = { keyHash, fingerprint, attempt: until.toISOString() }
      if (await this.keys.insertRunning(keyHash, fingerprint, until)) {
        await this.sweep(now)
        return { state: 'started', lease }
      }
      const row = await this.keys.find(keyHash)
      if (!row) continue // released between our INSERT and SELECT: try again
      if (row.expiresAt > now) return recordOf(row)
      if (await this.keys.replaceExpired(keyHash, fingerprint, until, now)) return { state: 'started', lease }
    }
    // Another request took the key over each time we looked: it is running.
    return { state: 'running', fingerprint }
  }

  async complete(lease: Lease, kept: KeptSignUp, keepMs: number): Promise<boolean> {
    const until = new Date(Date.now() + keepMs)
    return this.keys.complete(lease.keyHash, new Date(lease.attempt), JSON.stringify(kept), until)
  }

  async release(lease: Lease): Promise<void> {
    await this.keys.deleteRunning(lease.keyHash, new Date(lease.attempt))
  }

  /** Cheap by construction: one per interval, a bounded batch, found through the expiry index. */
  private async sweep(now: Date): Promise<void> {
    if (now.getTime() - this.lastSweep < this.sweepEveryMs) return
    this.lastSweep = now.getTime()
    try {
      // A full batch means more are waiting: the next key taken sweeps again, so the sweep keeps up
      // with any rate of sign-ups (at most one batch per key taken).
      if ((await this.keys.deleteExpired(now, SWEEP_BATCH)) >= SWEEP_BATCH) this.lastSweep = 0
    } catch (error) {
      this.options.onSweepError?.(error)
    }
  }
}

function recordOf(row: { state: string; fingerprint: string; response: string | null }): KeyRecord {
  if (row.state === 'running') return { state: 'running', fingerprint: row.fingerprint }
  return parseRecord(
    JSON.stringify({ state: row.state, fingerprint: row.fingerprint, kept: JSON.parse(row.response ?? 'null') })
  )
}
