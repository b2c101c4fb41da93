/**
 * The audit trail: every security event of every account (who did what to which account, when,
 * from where, in which request), kept AUDIT_RETENTION_DAYS. Never a password, token or hash: an
 * event has no field that could hold one.
 *
 * Recording is off the request's path: `record` queues the event and returns at once; a writer
 * inserts the queue's events in the order they were recorded (so ids follow the order of events
 * within a process), one statement at a time on one pool connection at most, so the trail can
 * never take the connections requests need. Whatever queued while a statement ran goes in the
 * next one (up to the repository's batch limit), so a busy process writes many events per round trip. A write that fails is reported to `onWriteFailure` (logged and
 * counted by the plugin) and never reaches the request it describes.
 */
import type { components } from '../../generated/openapi.js'
import { decodeCursor, encodeCursor } from '../accounts/cursors.js'
import type { AuditEventsRepository, EventRecord, PruneOptions } from '../db/audit-events-repository.js'

export type AuditAction = components['schemas']['AuditAction']

/** Every AuditAction of openapi.yaml (test/audit.test.ts holds this list to the contract's enum). */
export const AUDIT_ACTIONS = [
  'signed-up',
  'login-succeeded',
  'login-failed',
  'logged-out',
  'session-ended',
  'other-sessions-ended',
  'password-changed',
  'account-updated',
  'account-deleted',
  'account-suspended',
  'account-unsuspended',
  'admin-granted',
  'admin-revoked'
] as const satisfies readonly AuditAction[]

/** An account as an event names it: its id when known, and its username as it was then. */
export interface AuditSubject {
  id: string | null
  username: string
}

export interface NewAuditEvent {
  action: AuditAction
  actor: AuditSubject | null
  target: AuditSubject | null
  ip: string | null
  requestId: string | null
  at: Date
}

export interface AuditEvent {
  id: string
  at: Date
  action: AuditAction
  actor: string | null
  target: string | null
  ip: string | null
  requestId: string | null
}

export interface PageRequest {
  limit: number
  /** The cursor from the page before, as the client sent it. */
  after?: string
}

export interface EventPage {
  events: AuditEvent[]
  next: string | null
}

export interface AuditTrailOptions {
  /** A write that failed (its events are lost): log it, count it. Must not throw. */
  onWriteFailure?: (error: unknown, events: NewAuditEvent[]) => void
  /**
   * Events waiting to be written, at most; past it (the database is down or far behind) new
   * events are dropped and reported as failed writes, so memory stays bounded.
   */
  maxQueued?: number
}

/** The ids this service hands out: positive integers, within what a JavaScript number holds exactly. */
export function isEventId(key: string): boolean {
  return /^[1-9][0-9]{0,15}$/.test(key) && Number(key) <= Number.MAX_SAFE_INTEGER
}

export const DAY_MS = 86_400_000

/** What an operator did with `npm run admin` to an account: no actor, no address, no request. */
export function operatorEvent(action: AuditAction, account: { id: string; username: string }): NewAuditEvent {
  return {
    action,
    actor: null,
    target: { id: account.id, username: account.username },
    ip: null,
    requestId: null,
    at: new Date()
  }
}

export class AuditTrail {
  private readonly queue: NewAuditEvent[] = []
  private writing: Promise<void> | null = null
  private pruning: Promise<void> | null = null
  private failures = 0
  private readonly onWriteFailure: (error: unknown, events: NewAuditEvent[]) => void
  private readonly maxQueued: number

  constructor(
    private readonly events: AuditEventsRepository,
    options: AuditTrailOptions = {}
  ) {
    this.onWriteFailure = options.onWriteFailure ?? (() => {})
    this.maxQueued = options.maxQueued ?? 10_000
  }

  /** Failed writes since start: events lost. */
  get writeFailures(): number {
    return this.failures
  }

  /** Records the event off the request's path: a failure is logged and counted, never thrown. */
  record(event: NewAuditEvent): void {
    if (this.queue.length >= this.maxQueued) {
      this.failed(new Error(`audit trail: ${this.maxQueued} events already wait to be written`), [event])
      return
    }
    this.queue.push(event)
    this.writing ??= this.drain()
  }

  /** Resolves once every event recorded so far is written (or has failed) and no prune runs. Never rejects. */
  async settled(): Promise<void> {
    while (this.writing || this.pruning) {
      await this.writing
      await this.pruning
    }
  }

  /**
   * For a service closing: waits until what was recorded is written, or `waitMs` has passed (a
   * database that is down would take a second per statement); whatever still waits then is
   * dropped and reported as lost.
   */
  async close(waitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs)
    })
    await Promise.race([this.settled(), deadline])
    clearTimeout(timer)
    const left = this.queue.splice(0)
    if (left.length > 0) this.failed(new Error(`audit trail: closing with ${left.length} events not yet written`), left)
  }

  private async drain(): Promise<void> {
    // Started from record(): the first write waits for the next tick, never runs in the caller's.
    await Promise.resolve()
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.events.batchLimit)
        try {
          await this.events.insert(batch.map(({ at, ...event }) => ({ ...event, occurredAt: at })))
        } catch (error) {
          this.failed(error, batch)
        }
      }
    } finally {
      this.writing = null
    }
  }

  private failed(error: unknown, events: NewAuditEvent[]): void {
    this.failures += events.length
    try {
      this.onWriteFailure(error, events)
    } catch {
      // A broken logger must not stop the writer.
    }
  }

  /** The account's events (those done to it), newest first. */
  async forAccount(accountId: string, page: PageRequest): Promise<EventPage> {
    return this.page(accountId, page)
  }

  /** Every event, newest first. */
  async all(page: PageRequest): Promise<EventPage> {
    return this.page(undefined, page)
  }

  /** Deletes the events older than `retentionDays` before `now`; how many went. */
  prune(now: Date, retentionDays: number, options: PruneOptions = {}): Promise<number> {
    const run = this.events.pruneOlderThan(new Date(now.getTime() - retentionDays * DAY_MS), options)
    const tracked: Promise<void> = run.then(
      () => {},
      () => {}
    )
    this.pruning = tracked
    tracked.finally(() => {
      if (this.pruning === tracked) this.pruning = null
    })
    return run
  }

  private async page(targetId: string | undefined, { limit, after }: PageRequest): Promise<EventPage> {
    const before = decodeCursor(after, isEventId)
    const { rows, more } = await this.events.page(targetId, before === undefined ? undefined : Number(before), limit)
    const last = rows.at(-1)
    return { events: rows.map(toEvent), next: more && last ? encodeCursor(last.id) : null }
  }
}

function toEvent(row: EventRecord): AuditEvent {
  return {
    id: row.id,
    at: row.occurredAt,
    action: row.action as AuditAction,
    actor: row.actorUsername,
    target: row.targetUsername,
    ip: row.ip,
    requestId: row.requestId
  }
}
