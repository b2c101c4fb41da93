/**
 * Keyset pagination, shared by every list (`GET /users`, the audit trail): a page ends with an
 * opaque cursor, the position of its last item, never an offset, so a page costs one index range
 * scan wherever it starts, and items created or deleted between requests never shift a page.
 */
import { problems } from '../errors/problem.js'

export const DEFAULT_PAGE_LIMIT = 50

/** The cursor a client sends back: base64url of the last item's key. */
export function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url')
}

/** The key inside a cursor; a cursor this service never made is a 400. */
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

/**
 * RFC 8288 `Link` to the next page: the request's own path and query with `after` replaced, or
 * undefined on the last page.
 */
export function nextPageLink(requestUrl: string, next: string | null): string | undefined {
  if (next === null) return undefined
  const url = new URL(requestUrl, 'http://service.invalid')
  url.searchParams.set('after', next)
  return `<${url.pathname}${url.search}>; rel="next"`
}
