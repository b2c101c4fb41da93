// What bcrypt is given for a password. bcrypt reads at most 72 bytes and bcryptjs drops the rest,
// so a password of more than 72 bytes in UTF-8 (72 characters of a non-Latin script can be 288) is
// first hashed whole: its HMAC-SHA256 under a key of this service's own, in base64 (44 bytes), goes
// to bcrypt instead, and every character counts. Keyed rather than bare SHA-256: that base64 is a
// valid password too, and an unsalted SHA-256 of a reused password may sit in some other site's
// leak, whereas this HMAC can only be made by someone who knows the password already.
// Passwords of at most 72 bytes go to bcrypt as they are, so every hash made before this rule (which
// refused longer passwords) still verifies. Plain JavaScript, beside the worker that uses it, so it
// loads from src/ and dist/ alike.
import { createHmac } from 'node:crypto'

export const BCRYPT_MAX_BYTES = 72
const PRE_HASH_KEY = 'account-service/bcrypt-input/v1'

/** @param {string} password @returns {string} */
export function bcryptInput(password) {
  if (Buffer.byteLength(password, 'utf8') <= BCRYPT_MAX_BYTES) return password
  return createHmac('sha256', PRE_HASH_KEY).update(password, 'utf8').digest('base64')
}
