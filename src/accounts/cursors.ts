/**
 * Keyset pagination's cursors, shared by every list (`GET /users`, the audit trail): a page ends
 * with an opaque cursor, the position of its last item, never an offset, so a page costs one index
 * range scan wherever it starts, and items created or deleted between requests never shift a page.
 */
import { problems } from '../errors/problem.js'

/** The cursor a client sends back: base64url of the last item's key. */
export function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url')
}

/** The key inside a cursor; a cursor this service never made (or whose key is not `isKey`) is a 400. */
export function decodeCursor(cursor: string | undefined, isKey: (key: string) => boolean): string | undefined {
  if (cursor === undefined) return undefined
  const key = Buffer.from(cursor, 'base64url').toString('utf8')
  if (encodeCursor(key) !== cursor || !isKey(key)) {
    throw problems.validation('querystring/after is not a cursor from this list: start again without it', [
      { field: '/after', message: 'is not a cursor from this list' }
    ])
  }
  return key
}
