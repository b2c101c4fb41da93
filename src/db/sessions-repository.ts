/** Every query on the `sessions` table (the embedded default's session store). */
import { type PreparedQuery, prepare } from './prepared.js'
import type { Db } from './schema.js'
import type { Account } from '../accounts/account.js'
import type { NewSession, SessionRecord } from '../sessions/session.js'
import { type AccountRow, toAccount } from './users-repository.js'

export class SessionsRepository {
  /** Every authenticated request runs this: compiled once (see prepared.ts). */
  private readonly selectLiveAccount: PreparedQuery<
    [string, Date | string],
    AccountRow & { last_used_at: Date | string }
  >

  constructor(private readonly db: Db) {
    this.selectLiveAccount = prepare(db.kysely, 2, (tokenHash: string, now: Date | string) =>
      db.kysely
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .select([
          'users.id',
          'users.username',
          'users.admin',
          'users.data',
          'users.created_at',
          'users.updated_at',
          'users.suspended_at',
          'users.suspension_reason',
          'users.version',
          'sessions.last_used_at'
        ])
        .where('sessions.token_hash', '=', tokenHash)
        .where('sessions.expires_at', '>', now)
    )
  }

  /**
   * The account behind a session that has not expired at `now`: one query, session and user
   * together, with when the session was last used.
   */
  async findLiveAccount(tokenHash: string, now: Date): Promise<{ account: Account; lastUsedAt: Date } | undefined> {
    const [row] = await this.selectLiveAccount(tokenHash, this.db.time(now))
    return row && { account: toAccount(row), lastUsedAt: new Date(row.last_used_at) }
  }

  async touch(tokenHash: string, now: Date): Promise<void> {
    await this.db.kysely
      .updateTable('sessions')
      .set({ last_used_at: this.db.time(now) })
      .where('token_hash', '=', tokenHash)
      .execute()
  }

  /** The user's sessions that have not expired at `now`, newest first. */
  async listLive(userId: string, now: Date): Promise<SessionRecord[]> {
    const rows = await this.db.kysely
      .selectFrom('sessions')
      .select(['public_id', 'token_hash', 'created_at', 'last_used_at', 'expires_at', 'user_agent', 'ip'])
      .where('user_id', '=', userId)
      .where('expires_at', '>', this.db.time(now))
      .orderBy('created_at', 'desc')
      .execute()
    return rows.map((row) => ({
      id: row.public_id,
      tokenHash: row.token_hash,
      createdAt: new Date(row.created_at),
      lastUsedAt: new Date(row.last_used_at),
      expiresAt: new Date(row.expires_at),
      userAgent: row.user_agent,
      ip: row.ip
    }))
  }

  /** Deletes the user's live session with this public id; false when there is none. */
  async deleteById(userId: string, sessionId: string, now: Date): Promise<boolean> {
    const result = await this.db.kysely
      .deleteFrom('sessions')
      .where('user_id', '=', userId)
      .where('public_id', '=', sessionId)
      .where('expires_at', '>', this.db.time(now))
      .executeTakeFirst()
    return result.numDeletedRows > 0n
  }

  async deleteForUserExcept(userId: string, keepTokenHash: string): Promise<void> {
    await this.db.kysely
      .deleteFrom('sessions')
      .where('user_id', '=', userId)
      .where('token_hash', '!=', keepTokenHash)
      .execute()
  }

  async insert(session: NewSession): Promise<void> {
    await this.db.kysely
      .insertInto('sessions')
      .values({
        token_hash: session.token.hash,
        public_id: session.id,
        user_id: session.userId,
        expires_at: this.db.time(session.expiresAt),
        created_at: this.db.time(session.createdAt),
        last_used_at: this.db.time(session.createdAt),
        user_agent: session.userAgent,
        ip: session.ip
      })
      .execute()
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
