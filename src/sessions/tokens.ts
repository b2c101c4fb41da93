/**
 * Session tokens: `<routing tag>.<32 random bytes, base64url>`, 48 characters, shown once to the
 * client; only their SHA-256 is stored. The routing tag is the account's (routingTagOf): on a
 * Redis Cluster it names the hash slot holding every key of that account, so the lookup of a token
 * reaches the session and the cached account in one script on one shard. It carries 24 bits of a
 * hash of the user id: it tells nothing about the account, only that two tokens share one.
 */
import { hash, randomBytes } from 'node:crypto'
import type { TokenRef } from './session.js'

const SECRET_BYTES = 32
/** A tag, a dot, then base64url of 32 bytes, unpadded. Older 43-character tokens do not match. */
const TOKEN_SHAPE = /^([A-Za-z0-9_-]{4})\.[A-Za-z0-9_-]{43}$/

/** Four base64url characters of SHA-256(user id): the same for every session of one account. */
export function routingTagOf(userId: string): string {
  return hash('sha256', userId, 'base64url').slice(0, 4)
}

export function newToken(userId: string): { token: string; ref: TokenRef } {
  const route = routingTagOf(userId)
  const token = `${route}.${randomBytes(SECRET_BYTES).toString('base64url')}`
  return { token, ref: { hash: hashToken(token), route } }
}

/** The stores' view of a well-formed token, or undefined for anything else. */
export function tokenRef(token: string): TokenRef | undefined {
  const shape = TOKEN_SHAPE.exec(token)
  return shape ? { hash: hashToken(token), route: shape[1]! } : undefined
}

/** A session's public id: random, unrelated to its token, safe to show and to put in a URL. */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url')
}

/** The only form of a token the stores ever see. */
export function hashToken(token: string): string {
  // One-shot: no Hash object per request.
  return hash('sha256', token, 'hex')
}
