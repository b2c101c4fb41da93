/**
 * The audit trail: every security event of every account (who did what to which account, when,
 * from where, in which request), kept AUDIT_RETENTION_DAYS. Never a password, token or hash.
 * SKELETON: issue 14's audit work fills this in.
 */
import type { components } from '../../generated/openapi.js'

export type AuditAction = components['schemas']['AuditAction']

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

export class AuditTrail {
  /** Records the event off the request's path: a failure is logged and counted, never thrown. */
  record(_event: NewAuditEvent): void {}

  /** The account's events, newest first. */
  async forAccount(_accountId: string, _page: PageRequest): Promise<EventPage> {
    return { events: [], next: null }
  }

  /** Every event, newest first. */
  async all(_page: PageRequest): Promise<EventPage> {
    return { events: [], next: null }
  }
}
