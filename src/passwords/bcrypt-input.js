// What bcrypt is given for a password. bcrypt reads at most 72 bytes and bcryptjs drops the rest,
// so a password of more than 72 bytes in UTF-8 (72 characters of a non-Latin script can be 288) is
// first hashed whole with SHA-256: its base64, 44 bytes, goes to bcrypt instead and every
// character counts. Passwords of at most 72 bytes go to bcrypt as they are, so every hash made
// before this rule (which refused longer passwords) still verifies unchanged.
// Plain JavaScript, beside the worker that uses it, so it loads from src/ and dist/ alike.
import { createHash } from 'node:crypto'

export const BCRYPT_MAX_BYTES = 72

/** @param {string} password @returns {string} */
export function bcryptInput(password) {
  if (Buffer.byteLength(password, 'utf8') <= BCRYPT_MAX_BYTES) return password
  return createHash('sha256').update(password, 'utf8').digest('base64')
}
