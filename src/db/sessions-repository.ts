/** Every query on the `sessions` table (the embedded default's session store). */
import type { Db } from './schema.js'

export interface SessionRow {
  userId: string
  expiresAt: Date
}

export class SessionsRepository {
  constructor(private readonly db: Db) {}

  async insert(tokenHash: string, userId: string, expiresAt: Date, now: Date): Promise<void> {
    await this.db.kysely
      .insertInto('sessions')
      .values({
        token_hash: tokenHash,
        user_id: userId,
        expires_at: this.db.time(expiresAt),
        created_at: this.db.time(now)
      })
      .execute()
  }

  /** The session if it exists and has not expired at `now`. */
  async findLive(tokenHash: string, now: Date): Promise<SessionRow | undefined> {
    const row = await this.db.kysely
      .selectFrom('sessions')
      .select(['user_id', 'expires_at'])
      .where('token_hash', '=', tokenHash)
      .where('expires_at', '>', this.db.time(now))
      .executeTakeFirst()
    return row && { userId: row.user_id, expiresAt: new Date(row.expires_at) }
  }

  async delete(tokenHash: string): Promise<void> {
    await this.db.kysely.deleteFrom('sessions').where('token_hash', '=', tokenHash).execute()
  }

  async deleteForUser(userId: string): Promise<void> {
    await this.db.kysely.deleteFrom('sessions').where('user_id', '=', userId).execute()
  }

  async deleteExpired(now: Date): Promise<number> {
    const result = await this.db.kysely
      .deleteFrom('sessions')
      .where('expires_at', '<=', this.db.time(now))
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }

  async countLive(now: Date): Promise<number> {
    const row = await this.db.kysely
      .selectFrom('sessions')
      .select((eb) => eb.fn.countAll<number | string>().as('live'))
      .where('expires_at', '>', this.db.time(now))
      .executeTakeFirstOrThrow()
    return Number(row.live)
  }

  /** Answers when the table can be read. */
  async ping(): Promise<void> {
    await this.db.kysely.selectFrom('sessions').select('token_hash').limit(1).execute()
  }
}
