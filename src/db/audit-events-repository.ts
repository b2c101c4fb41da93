/**
 * Every query on the `audit_events` table (the audit trail, src/audit). Pages are keyset pages on
 * the id (newest first: one index range scan wherever a page starts); pruning deletes in short
 * batches of ids, so it never holds a lock, or the database, for long.
 */
import type { ExpressionBuilder } from 'kysely'
import { usernameKey } from '../accounts/account.js'
import type { Database, Db } from './schema.js'

/** An account an event names: its id, or null to look it up by username in the INSERT itself. */
export interface EventSubject {
  id: string | null
  username: string
}

export interface EventInsert {
  occurredAt: Date
  action: string
  actor: EventSubject | null
  target: EventSubject | null
  ip: string | null
  requestId: string | null
}

export interface EventRecord {
  /** The row's id, as a decimal string (PostgreSQL hands a bigint back as text, the others as a number). */
  id: string
  occurredAt: Date
  action: string
  actorUsername: string | null
  targetUsername: string | null
  ip: string | null
  requestId: string | null
}

export interface EventRows {
  /** At most `limit` events, newest first. */
  rows: EventRecord[]
  /** Whether there are older events after the last of these. */
  more: boolean
}

export interface PruneOptions {
  /** Rows per DELETE: no statement touches more. */
  batchSize?: number
  /** A pause between batches, so requests' statements get the database in between. */
  pauseMs?: number
  /** Stops between batches (the service is closing). */
  signal?: AbortSignal
}

const COLUMNS = ['id', 'occurred_at', 'action', 'actor_username', 'target_username', 'ip', 'request_id'] as const
const IP_MAX = 64
const REQUEST_ID_MAX = 128

type Row = {
  id: number | bigint | string
  occurred_at: Date | string
  action: string
  actor_username: string | null
  target_username: string | null
  ip: string | null
  request_id: string | null
}

function toRecord(row: Row): EventRecord {
  return {
    id: String(row.id),
    occurredAt: new Date(row.occurred_at),
    action: row.action,
    actorUsername: row.actor_username,
    targetUsername: row.target_username,
    ip: row.ip,
    requestId: row.request_id
  }
}

function clip(value: string | null, max: number): string | null {
  return value === null ? null : value.slice(0, max)
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export class AuditEventsRepository {
  /**
   * Events one INSERT may carry. SQLite writes in-process in microseconds, one row per statement
   * (which keeps its statement cache to a few texts); over the network, up to 100 rows share a
   * round trip.
   */
  readonly batchLimit: number

  constructor(private readonly db: Db) {
    this.batchLimit = db.engine === 'sqlite' ? 1 : 100
  }

  /**
   * One statement, the rows in the order given (so their ids are too). A subject without an id is
   * looked up by its username in the same INSERT: the account's id and its username as spelled at
   * sign-up, or (no such account) no id and the name as given, e.g. a failed login for a username
   * nobody has.
   */
  async insert(events: EventInsert[]): Promise<void> {
    if (events.length === 0) return
    await this.db.kysely
      .insertInto('audit_events')
      .values((eb) =>
        events.map((event) => {
          const [actorId, actorUsername] = subject(eb, event.actor)
          const [targetId, targetUsername] = subject(eb, event.target)
          return {
            occurred_at: this.db.time(event.occurredAt),
            action: event.action,
            actor_id: actorId,
            actor_username: actorUsername,
            target_id: targetId,
            target_username: targetUsername,
            ip: clip(event.ip, IP_MAX),
            request_id: clip(event.requestId, REQUEST_ID_MAX)
          }
        })
      )
      .execute()
  }

  /**
   * A page of events, newest first, older than `beforeId` when given: those done to `targetId`, or
   * every event when it is undefined. Reads one row more than `limit` to know whether there is a
   * next page.
   */
  async page(targetId: string | undefined, beforeId: number | undefined, limit: number): Promise<EventRows> {
    let query = this.db.kysely
      .selectFrom('audit_events')
      .select(COLUMNS)
      .orderBy('id', 'desc')
      .limit(limit + 1)
    if (targetId !== undefined) query = query.where('target_id', '=', targetId)
    if (beforeId !== undefined) query = query.where('id', '<', beforeId)
    const rows = (await query.execute()) as Row[]
    return { rows: rows.slice(0, limit).map(toRecord), more: rows.length > limit }
  }

  /**
   * Deletes every event that occurred before `cutoff`, at most `batchSize` rows per statement: the
   * oldest ids (an index range scan on occurred_at, bounded by the LIMIT), then a DELETE of exactly
   * those ids by primary key. No statement scans or locks more than a batch, whatever the backlog
   * (MariaDB refuses LIMIT in an IN-subquery and PostgreSQL has no DELETE ... LIMIT, so the ids
   * travel as a list), and it is exact whatever order the ids and the clocks of several instances
   * put the rows in. Returns how many rows went.
   */
  async pruneOlderThan(cutoff: Date, options: PruneOptions = {}): Promise<number> {
    const batchSize = options.batchSize ?? 1000
    const pauseMs = options.pauseMs ?? 10
    const before = this.db.time(cutoff)
    let deleted = 0
    while (!options.signal?.aborted) {
      const batch = await this.db.kysely
        .selectFrom('audit_events')
        .select('id')
        .where('occurred_at', '<', before)
        .orderBy('occurred_at')
        .limit(batchSize)
        .execute()
      if (batch.length === 0) break
      const result = await this.db.kysely
        .deleteFrom('audit_events')
        .where(
          'id',
          'in',
          batch.map((row) => row.id)
        )
        .executeTakeFirst()
      deleted += Number(result.numDeletedRows)
      if (batch.length < batchSize) break
      if (pauseMs > 0) await sleep(pauseMs)
    }
    return deleted
  }
}

/** The id and username columns' values for a subject: given, looked up by username, or null. */
function subject(eb: ExpressionBuilder<Database, 'audit_events'>, who: EventSubject | null) {
  if (who === null) return [null, null] as const
  if (who.id !== null) return [who.id, who.username] as const
  const key = usernameKey(who.username)
  const account = () => eb.selectFrom('users').where('username_key', '=', key)
  return [
    account().select('users.id'),
    eb.fn.coalesce(account().select('users.username'), eb.val(who.username))
  ] as const
}
