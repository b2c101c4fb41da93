/** Turns domain records into the shapes the contract promises. Nothing secret gets through. */
import type { components } from '../../generated/openapi.js'
import type { Account } from '../accounts/account.js'
import type { AuditEvent } from '../audit/audit-trail.js'
import type { ListedSession, StartedSession } from '../sessions/sessions.js'

export type User = components['schemas']['User']
export type Session = components['schemas']['Session']
export type ActiveSession = components['schemas']['ActiveSession']
export type PresentedEvent = components['schemas']['AuditEvent']

/** `showReason`: whether the viewer may see why the account is suspended (access-policy.ts). */
export function presentUser(user: Account, showReason = false): User {
  const { suspended } = user
  return {
    username: user.username,
    admin: user.admin,
    data: user.data,
    createdAt: user.createdAt.toISOString(),
    updatedAt: user.updatedAt.toISOString(),
    suspended: suspended && {
      since: suspended.since.toISOString(),
      ...(showReason && { reason: suspended.reason })
    }
  }
}

export function presentActiveSession(session: ListedSession): ActiveSession {
  return {
    id: session.id,
    createdAt: session.createdAt.toISOString(),
    lastUsedAt: session.lastUsedAt.toISOString(),
    expiresAt: session.expiresAt.toISOString(),
    userAgent: session.userAgent,
    ip: session.ip,
    current: session.current
  }
}

export function presentSession(session: StartedSession): Session {
  return { token: session.token, tokenType: 'Bearer', expiresAt: session.expiresAt.toISOString() }
}

/** `showOrigin`: whether the viewer may see where it came from (access-policy.ts seesEventOrigin). */
export function presentEvent(event: AuditEvent, showOrigin: boolean): PresentedEvent {
  return {
    id: event.id,
    at: event.at.toISOString(),
    action: event.action,
    actor: event.actor,
    target: event.target,
    ip: showOrigin ? event.ip : null,
    requestId: showOrigin ? event.requestId : null
  }
}
