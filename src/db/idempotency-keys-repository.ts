/**
 * Every query on the `idempotency_keys` table (the embedded default's Idempotency-Key records; with
 * Redis they live there). A running record is named by its key and its expiry: a later attempt
 * can only take the key over once that expiry has passed, so its own expiry is later, and the pair
 * tells the two apart.
 */
import { isUniqueViolation } from './errors.js'
import type { Db } from './schema.js'

export interface IdempotencyKeyRow {
  state: string
  fingerprint: string
  response: string | null
  expiresAt: Date
}

export class IdempotencyKeysRepository {
  constructor(private readonly db: Db) {}

  /** A new running record; false when the key already has a row (live or expired). */
  async insertRunning(keyHash: string, fingerprint: string, expiresAt: Date): Promise<boolean> {
    try {
      await this.db.kysely
        .insertInto('idempotency_keys')
        .values({
          key_hash: keyHash,
          state: 'running',
          fingerprint,
          response: null,
          expires_at: this.db.time(expiresAt)
        })
        .execute()
      return true
    } catch (error) {
      if (isUniqueViolation(error)) return false
      throw error
    }
  }

  async find(keyHash: string): Promise<IdempotencyKeyRow | undefined> {
    const row = await this.db.kysely
      .selectFrom('idempotency_keys')
      .select(['state', 'fingerprint', 'response', 'expires_at'])
      .where('key_hash', '=', keyHash)
      .executeTakeFirst()
    return (
      row && {
        state: row.state,
        fingerprint: row.fingerprint,
        response: row.response,
        expiresAt: new Date(row.expires_at)
      }
    )
  }

  /**
   * Turns a row that had expired by `now` into a new running record, in one UPDATE: of two
   * requests that both found it expired, only one changes it (the other's WHERE no longer holds).
   */
  async replaceExpired(keyHash: string, fingerprint: string, expiresAt: Date, now: Date): Promise<boolean> {
    const result = await this.db.kysely
      .updateTable('idempotency_keys')
      .set({ state: 'running', fingerprint, response: null, expires_at: this.db.time(expiresAt) })
      .where('key_hash', '=', keyHash)
      .where('expires_at', '<=', this.db.time(now))
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  /** Keeps `response` until `expiresAt`, if the running record that expires at `runningUntil` is still there. */
  async complete(keyHash: string, runningUntil: Date, response: string, expiresAt: Date): Promise<boolean> {
    const result = await this.db.kysely
      .updateTable('idempotency_keys')
      .set({ state: 'done', response, expires_at: this.db.time(expiresAt) })
      .where('key_hash', '=', keyHash)
      .where('state', '=', 'running')
      .where('expires_at', '=', this.db.time(runningUntil))
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  /** Deletes the running record that expires at `runningUntil`, and nothing else. */
  async deleteRunning(keyHash: string, runningUntil: Date): Promise<void> {
    await this.db.kysely
      .deleteFrom('idempotency_keys')
      .where('key_hash', '=', keyHash)
      .where('state', '=', 'running')
      .where('expires_at', '=', this.db.time(runningUntil))
      .execute()
  }

  /**
   * Deletes up to `limit` rows that had expired by `now`: a range scan of the expiry index, then
   * a delete by primary key (the one form all three engines accept; MySQL refuses LIMIT in a
   * subquery of the table it deletes from). Returns how many went.
   */
  async deleteExpired(now: Date, limit: number): Promise<number> {
    const cutoff = this.db.time(now)
    const expired = await this.db.kysely
      .selectFrom('idempotency_keys')
      .select('key_hash')
      .where('expires_at', '<', cutoff)
      .limit(limit)
      .execute()
    if (expired.length === 0) return 0
    const result = await this.db.kysely
      .deleteFrom('idempotency_keys')
      .where(
        'key_hash',
        'in',
        expired.map((row) => row.key_hash)
      )
      .where('expires_at', '<', cutoff)
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}
