/** Turns domain records into the shapes the contract promises. Nothing secret gets through. */
import type { components } from '../../generated/openapi.js'
import type { Account } from '../accounts/account.js'
import type { StartedSession } from '../sessions/sessions.js'

export type User = components['schemas']['User']
export type Session = components['schemas']['Session']

export function presentUser(user: Account): User {
  return {
    username: user.username,
    admin: user.admin,
    data: user.data,
    createdAt: user.createdAt.toISOString(),
    updatedAt: user.updatedAt.toISOString()
  }
}

export function presentSession(session: StartedSession): Session {
  return { token: session.token, tokenType: 'Bearer', expiresAt: session.expiresAt.toISOString() }
}
