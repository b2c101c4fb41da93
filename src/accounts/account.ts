/**
 * What an account is, in the words every layer speaks: the request path, the use cases and the
 * stores all hand accounts around, so these types sit below them all (the stores map their rows to
 * them; see test/architecture.test.ts). Nothing here does I/O.
 */

/** An account as requests see it: everything but the password hash. */
export interface Account {
  id: string
  username: string
  admin: boolean
  data: Record<string, unknown>
  createdAt: Date
  updatedAt: Date
  /** Set while an administrator has the account suspended: it cannot log in, and has no sessions. */
  suspended: Suspension | null
  /** Moves up by one with every change to the account: its ETag (entity-tags.ts). */
  version: number
}

/**
 * Exactly the fields of an Account, whatever else the object carries (a UserRecord's password
 * hash): what may be cached or handed on.
 */
export function accountFields(account: Account): Account {
  const { id, username, admin, data, createdAt, updatedAt, suspended, version } = account
  return { id, username, admin, data, createdAt, updatedAt, suspended, version }
}

export interface Suspension {
  since: Date
  reason: string | null
}

/** The whole account, password hash included: for logins and transfers only. */
export interface UserRecord extends Account {
  passwordHash: string
}

export interface NewUser {
  id: string
  username: string
  passwordHash: string
  data: Record<string, unknown>
  now: Date
}

/** openapi.yaml's Username: 3 to 32 letters, digits, `_`, `.` or `-`. */
const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/

export function isUsername(value: string): boolean {
  return USERNAME.test(value)
}

/** Usernames are unique regardless of case: this is the form they are compared and stored in. */
export function usernameKey(username: string): string {
  return username.toLowerCase()
}
