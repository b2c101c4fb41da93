/** Every query on the `sessions` table (the embedded default's session store). */
import { type PreparedQuery, prepare } from './prepared.js'
import type { Db } from './schema.js'
import type { Account } from '../accounts/account.js'
import type { NewSession } from '../sessions/session.js'
import { type AccountRow, toAccount } from './users-repository.js'

export class SessionsRepository {
  /** Every authenticated request runs this: compiled once (see prepared.ts). */
  private readonly selectLiveAccount: PreparedQuery<[string, Date | string], AccountRow>

  constructor(private readonly db: Db) {
    this.selectLiveAccount = prepare(db.kysely, 2, (tokenHash: string, now: Date | string) =>
      db.kysely
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .select(['users.id', 'users.username', 'users.admin', 'users.data', 'users.created_at', 'users.updated_at'])
        .where('sessions.token_hash', '=', tokenHash)
        .where('sessions.expires_at', '>', now)
    )
  }

  /** The account behind a session that has not expired at `now`: one query, session and user together. */
  async findLiveAccount(tokenHash: string, now: Date): Promise<Account | undefined> {
    const [row] = await this.selectLiveAccount(tokenHash, this.db.time(now))
    return row && toAccount(row)
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
