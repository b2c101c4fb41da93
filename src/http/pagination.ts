/**
 * Pages on the wire: the default size, and the RFC 8288 `Link` to the next page (the cursors
 * themselves are src/accounts/cursors.ts).
 */
export const DEFAULT_PAGE_LIMIT = 50

/** The request's own path and query with `after` set to `next`, or undefined on the last page. */
export function nextPageLink(requestUrl: string, next: string | null): string | undefined {
  if (next === null) return undefined
  const url = new URL(requestUrl, 'http://service.invalid')
  url.searchParams.set('after', next)
  return `<${url.pathname}${url.search}>; rel="next"`
}
