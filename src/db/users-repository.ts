/** Every query on the `users` table. */
import { type Account, accountFields, type NewUser, type UserRecord, usernameKey } from '../accounts/account.js'
import { sql } from 'kysely'
import { type PreparedQuery, prepare } from './prepared.js'
import type { Db } from './schema.js'

/** What a request needs: the password hash stays in the database. */
export const ACCOUNT_COLUMNS = [
  'id',
  'username',
  'admin',
  'data',
  'created_at',
  'updated_at',
  'suspended_at',
  'suspension_reason',
  'version'
] as const
const COLUMNS = [...ACCOUNT_COLUMNS, 'password_hash'] as const

export type AccountRow = {
  id: string
  username: string
  admin: boolean | number
  data: unknown
  created_at: Date | string
  updated_at: Date | string
  suspended_at: Date | string | null
  suspension_reason: string | null
  version: number | string
}

type Row = AccountRow & { password_hash: string }

/**
 * SQLite hands `data` back as text; mysql2 and pg parse JSON columns themselves (MariaDB's JSON is
 * LONGTEXT underneath, but mysql2 parses it too). `data` is always an object, so a string can only
 * mean text from the driver.
 */
function parseData(value: unknown): Record<string, unknown> {
  return (typeof value === 'string' ? JSON.parse(value) : value) as Record<string, unknown>
}

export function toAccount(row: AccountRow): Account {
  return {
    id: row.id,
    username: row.username,
    admin: Boolean(row.admin),
    data: parseData(row.data),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    suspended: row.suspended_at === null ? null : { since: new Date(row.suspended_at), reason: row.suspension_reason },
    version: Number(row.version)
  }
}

function toRecord(row: Row): UserRecord {
  return { ...toAccount(row), passwordHash: row.password_hash }
}

/** How many times changeData reads and writes again when the row moved in between. */
const CHANGE_ROUNDS = 5

export class UsersRepository {
  // The reads every request may make, compiled once (see prepared.ts).
  private readonly selectByKey: PreparedQuery<[string], Row>
  private readonly selectAccountById: PreparedQuery<[string], AccountRow>

  constructor(private readonly db: Db) {
    this.selectByKey = prepare(db.kysely, 1, (key: string) =>
      db.kysely.selectFrom('users').select(COLUMNS).where('username_key', '=', key)
    )
    this.selectAccountById = prepare(db.kysely, 1, (id: string) =>
      db.kysely.selectFrom('users').select(ACCOUNT_COLUMNS).where('id', '=', id)
    )
  }

  /** Throws the driver's unique-violation error when the username is taken. */
  async insert(user: NewUser): Promise<Account> {
    const now = this.db.time(user.now)
    await this.db.kysely
      .insertInto('users')
      .values({
        id: user.id,
        username: user.username,
        username_key: usernameKey(user.username),
        password_hash: user.passwordHash,
        data: JSON.stringify(user.data),
        created_at: now,
        updated_at: now
      })
      .execute()
    return {
      id: user.id,
      username: user.username,
      admin: false,
      data: user.data,
      createdAt: user.now,
      updatedAt: user.now,
      suspended: null,
      version: 1
    }
  }

  async findByUsername(username: string): Promise<UserRecord | undefined> {
    const [row] = await this.selectByKey(usernameKey(username))
    return row && toRecord(row)
  }

  async findAccountById(id: string): Promise<Account | undefined> {
    const [row] = await this.selectAccountById(id)
    return row && toAccount(row)
  }

  /**
   * Sets the account's data in one statement, only while the row is at one of `versions` (any
   * version with 'any'): the check and the write are one step. Returns the new version, with the
   * whole account as written where the engine can say, or undefined when no row matched (gone, or
   * at another version). PostgreSQL and SQLite say with RETURNING. MySQL has neither that nor a
   * second round trip to spare: LAST_INSERT_ID(expr) hands the new version back in the statement's
   * own reply, and the UPDATE first matches only while the fields other writes change (admin,
   * suspension) are as in `seen`, the account as the caller read it, so the row written is `seen`
   * with this data. Only if they moved since (rare: an admin's change) is it issued again without.
   */
  async setData(
    id: string,
    data: Record<string, unknown>,
    now: Date,
    versions: number[] | 'any',
    seen?: Account
  ): Promise<{ version: number; account?: Account } | undefined> {
    if (versions !== 'any' && versions.length === 0) return undefined
    let query = this.db.kysely
      .updateTable('users')
      .set((eb) => ({
        data: JSON.stringify(data),
        updated_at: this.db.time(now),
        version: this.db.engine === 'mysql' ? sql<number>`last_insert_id(version + 1)` : eb('version', '+', 1)
      }))
      .where('id', '=', id)
    if (versions !== 'any') query = query.where('version', 'in', versions)
    if (this.db.engine === 'mysql') {
      const newVersion = async (update: typeof query) => {
        const result = await this.db.kysely.executeQuery(update.compile())
        return result.numAffectedRows ? Number(result.insertId) : undefined
      }
      if (seen) {
        const since = seen.suspended ? this.db.time(seen.suspended.since) : null
        const reason = seen.suspended?.reason ?? null
        const asSeen = query
          .where('admin', '=', this.db.bool(seen.admin))
          .where('suspended_at', since === null ? 'is' : '=', since)
          .where('suspension_reason', reason === null ? 'is' : '=', reason)
        const version = await newVersion(asSeen)
        if (version !== undefined)
          return { version, account: { ...accountFields(seen), data, updatedAt: now, version } }
      }
      const version = await newVersion(query)
      return version === undefined ? undefined : { version }
    }
    const row = await query.returning(ACCOUNT_COLUMNS).executeTakeFirst()
    if (!row) return undefined
    const account = toAccount(row)
    return { version: account.version, account }
  }

  /**
   * Changes the account's data in one transaction that holds its row: `change` gets the row as it
   * is (and may throw, e.g. a 412 for a stale If-Match, or a 400 for data out of bounds) and returns
   * the new data, or undefined to change nothing. The UPDATE names the version it read, so even
   * where SELECT ... FOR UPDATE does not exist (SQLite, whose write lock comes with the UPDATE) no
   * change made in between is overwritten: the whole step is retried instead.
   * Returns the account as changed, or undefined when the user no longer exists.
   */
  async changeData(
    id: string,
    change: (current: Account) => Record<string, unknown> | undefined,
    now: Date
  ): Promise<Account | undefined> {
    // Only a write that slipped in between the read and the UPDATE (SQLite, several processes)
    // makes a round miss; a few rounds always suffice, and the bound keeps a bug from spinning.
    for (let round = 1; ; round++) {
      const outcome = await this.db.kysely.transaction().execute(async (trx) => {
        let read = trx.selectFrom('users').select(ACCOUNT_COLUMNS).where('id', '=', id)
        if (this.db.engine !== 'sqlite') read = read.forUpdate()
        const row = await read.executeTakeFirst()
        if (!row) return { account: undefined }
        const current = toAccount(row)
        const data = change(current)
        if (data === undefined) return { account: current }
        const result = await trx
          .updateTable('users')
          .set((eb) => ({ data: JSON.stringify(data), updated_at: this.db.time(now), version: eb('version', '+', 1) }))
          .where('id', '=', id)
          .where('version', '=', current.version)
          .executeTakeFirst()
        if (result.numUpdatedRows === 0n) return undefined
        return { account: { ...current, data, updatedAt: now, version: current.version + 1 } }
      })
      if (outcome) return outcome.account
      if (round === CHANGE_ROUNDS) throw new Error(`users: ${id} changed under ${CHANGE_ROUNDS} rounds of changeData`)
    }
  }

  /**
   * A rehash at login: the same password at another cost. Only while the stored hash is still
   * `previousHash`, so it can never undo a password change made meanwhile; false when it was not.
   */
  async replacePasswordHash(id: string, previousHash: string, passwordHash: string): Promise<boolean> {
    const result = await this.db.kysely
      .updateTable('users')
      .set({ password_hash: passwordHash })
      .where('id', '=', id)
      .where('password_hash', '=', previousHash)
      .executeTakeFirst()
    return result.numUpdatedRows > 0n
  }

  /** A password change (unlike a rehash at login) is a change to the account: `updated_at` moves. */
  async changePassword(id: string, passwordHash: string, now: Date): Promise<boolean> {
    const result = await this.db.kysely
      .updateTable('users')
      .set((eb) => ({ password_hash: passwordHash, updated_at: this.db.time(now), version: eb('version', '+', 1) }))
      .where('id', '=', id)
      .executeTakeFirst()
    return result.numUpdatedRows > 0n
  }

  /** Suspends the account (or replaces the reason of a suspension, keeping its start); false when the user no longer exists. */
  async suspend(id: string, reason: string | null, now: Date): Promise<boolean> {
    const result = await this.db.kysely
      .updateTable('users')
      .set((eb) => ({
        suspended_at: eb.fn.coalesce('suspended_at', eb.val(this.db.time(now))),
        suspension_reason: reason,
        updated_at: this.db.time(now),
        version: eb('version', '+', 1)
      }))
      .where('id', '=', id)
      .executeTakeFirst()
    return result.numUpdatedRows > 0n
  }

  /** Lifts a suspension; false when the user no longer exists. */
  async unsuspend(id: string, now: Date): Promise<boolean> {
    const result = await this.db.kysely
      .updateTable('users')
      .set((eb) => ({
        suspended_at: null,
        suspension_reason: null,
        updated_at: this.db.time(now),
        version: eb('version', '+', 1)
      }))
      .where('id', '=', id)
      .executeTakeFirst()
    return result.numUpdatedRows > 0n
  }

  /**
   * Deletes the account, only while it is at one of `versions` unless they are 'any': the check and
   * the delete are one statement. False when no row was deleted (gone, or at another version).
   */
  async delete(id: string, versions: number[] | 'any' = 'any'): Promise<boolean> {
    if (versions !== 'any' && versions.length === 0) return false
    let query = this.db.kysely.deleteFrom('users').where('id', '=', id)
    if (versions !== 'any') query = query.where('version', 'in', versions)
    const result = await query.executeTakeFirst()
    return result.numDeletedRows > 0n
  }

  /** One page of accounts in id order, after `afterId` (for export). */
  async page(afterId: string | undefined, limit: number): Promise<UserRecord[]> {
    let query = this.db.kysely.selectFrom('users').select(COLUMNS).orderBy('id').limit(limit)
    if (afterId !== undefined) query = query.where('id', '>', afterId)
    return (await query.execute()).map(toRecord)
  }

  /** Which of these usernames (any case) are taken already. */
  async existingUsernames(usernames: string[]): Promise<string[]> {
    if (usernames.length === 0) return []
    const rows = await this.db.kysely
      .selectFrom('users')
      .select('username')
      .where('username_key', 'in', usernames.map(usernameKey))
      .execute()
    return rows.map((row) => row.username)
  }

  /** Which of these ids exist already. */
  async existingIds(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return []
    const rows = await this.db.kysely.selectFrom('users').select('id').where('id', 'in', ids).execute()
    return rows.map((row) => row.id)
  }

  /** Inserts accounts exactly as exported from another database (for import). */
  async insertExact(users: UserRecord[]): Promise<void> {
    if (users.length === 0) return
    await this.db.kysely
      .insertInto('users')
      .values(
        users.map((user) => ({
          id: user.id,
          username: user.username,
          username_key: usernameKey(user.username),
          password_hash: user.passwordHash,
          admin: this.db.bool(user.admin),
          data: JSON.stringify(user.data),
          created_at: this.db.time(user.createdAt),
          updated_at: this.db.time(user.updatedAt),
          version: user.version
        }))
      )
      .execute()
  }

  /** For operators only (`npm run admin`); no API request reaches this. Returns false when the user no longer exists. */
  async setAdmin(id: string, admin: boolean, now: Date): Promise<boolean> {
    const result = await this.db.kysely
      .updateTable('users')
      .set((eb) => ({ admin: this.db.bool(admin), updated_at: this.db.time(now), version: eb('version', '+', 1) }))
      .where('id', '=', id)
      .executeTakeFirst()
    return result.numUpdatedRows > 0n
  }

  /**
   * Up to `limit` accounts in `username_key` order, after the key `afterKey`, and only those whose
   * key starts with `prefix` (itself a lower-cased key prefix, [a-z0-9_.-]) if given: for `GET /users`.
   * username_key compares bytes on every engine (migration 0009), so each page is one range scan of
   * its unique index, as cheap at the thousandth page as at the first. The prefix is the range
   * [prefix, prefix + '~'): every key character sorts below '~' (0x7e; the highest, 'z', is 0x7a),
   * so a key is in it exactly when it starts with the prefix. One lower bound, the tighter of the
   * two, so the planner estimates the range as it is.
   */
  async listPage({
    afterKey,
    prefix,
    limit
  }: {
    afterKey?: string
    prefix?: string
    limit: number
  }): Promise<Account[]> {
    let query = this.db.kysely.selectFrom('users').select(ACCOUNT_COLUMNS).orderBy('username_key').limit(limit)
    if (afterKey !== undefined && (prefix === undefined || afterKey >= prefix)) {
      query = query.where('username_key', '>', afterKey)
    } else if (prefix !== undefined) query = query.where('username_key', '>=', prefix)
    if (prefix !== undefined) query = query.where('username_key', '<', `${prefix}~`)
    return (await query.execute()).map(toAccount)
  }
}
