/**
 * What identifies a keyed sign-up, without its password. The key is stored as its SHA-256 only;
 * the fingerprint is the SHA-256 of the key, the username as it is compared (usernameKey) and the
 * data in a canonical form (keys sorted at every depth), so a retry that sends the same JSON with
 * its members in another order is the same request. The password is left out on purpose: a fast
 * hash of it in Redis could be brute-forced by anyone who reads Redis. A replay proves it instead
 * against the account's bcrypt hash (idempotent-sign-ups.ts).
 */
import { createHash } from 'node:crypto'
import type { SignUp } from '../accounts/accounts.js'
import { usernameKey } from '../accounts/account.js'

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** The same value with every object's keys in sorted order (arrays keep theirs). */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical)
  if (value === null || typeof value !== 'object') return value
  // fromEntries defines own properties, so a member named "__proto__" stays a member.
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, canonical((value as Record<string, unknown>)[key])])
  )
}

/** How a key is stored and looked up: never the key itself. */
export function keyHashOf(key: string): string {
  return sha256(key)
}

/** No data and empty data create the same account, so they are the same request. */
export function fingerprintOf(key: string, signUp: SignUp): string {
  return sha256(JSON.stringify([key, usernameKey(signUp.username), canonical(signUp.data ?? {})]))
}
