/** Session tokens: 32 random bytes shown once to the client; only their SHA-256 is stored. */
import { hash, randomBytes } from 'node:crypto'

const TOKEN_BYTES = 32
/** base64url of 32 bytes, unpadded. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/

export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url')
}

export function isWellFormedToken(token: string): boolean {
  return TOKEN_SHAPE.test(token)
}

/** The only form of a token the stores ever see. */
export function hashToken(token: string): string {
  // One-shot: no Hash object per request.
  return hash('sha256', token, 'hex')
}
