/**
 * Accounts' entity tags (RFC 9110 §8.8.3) and the preconditions that name them. A tag is the
 * account's version and its routing tag (sessions/tokens.ts, 24 bits of the account's id), so a tag
 * of one account practically never matches another (two accounts share a routing tag once in about
 * 16.7 million pairs), nor the account a deleted one's username was signed up for again.
 */
import { problems } from '../errors/problem.js'
import { routingTagOf } from '../sessions/tokens.js'
import type { Account } from './account.js'

/** The largest version the `users.version` column (a 32-bit integer) holds. */
const MAX_VERSION = 2_147_483_647

/** The strong ETag of the account as it is now. */
export function entityTag(account: Pick<Account, 'id' | 'version'>): string {
  return `"${account.version}-${routingTagOf(account.id)}"`
}

/** What `If-Match` asks for: any current version (`*`), or one of these tags. */
export type Precondition = { any: true } | { tags: string[] }

/**
 * One list element (RFC 9110 §5.6.1): an entity tag, possibly weak, then a comma or the end. For
 * If-Match the contract's pattern, checked first, also refuses tabs around the commas (see
 * openapi.yaml); If-None-Match, which has none, keeps RFC 9110's whitespace.
 */
const LIST_ITEM = /[ \t]*(?:(W\/)?"([\x21\x23-\x7e]*)")?[ \t]*(,|$)/y

/** The entity tags of a list header, weak ones marked; undefined when the header is malformed. */
function entityTags(header: string): { weak: boolean; opaque: string }[] | undefined {
  const tags: { weak: boolean; opaque: string }[] = []
  LIST_ITEM.lastIndex = 0
  while (LIST_ITEM.lastIndex < header.length) {
    const match = LIST_ITEM.exec(header)
    if (!match) return undefined
    if (match[2] !== undefined) tags.push({ weak: match[1] !== undefined, opaque: match[2] })
    if (match[3] === '') break
  }
  return tags
}

/** The `If-Match` header as a precondition; undefined without one, a 400 when it is malformed. */
export function parseIfMatch(header: string | undefined): Precondition | undefined {
  if (header === undefined) return undefined
  if (header.trim() === '*') return { any: true }
  const tags = entityTags(header)
  if (!tags || tags.length === 0) {
    throw problems.validation('headers/if-match must be "*" or a list of ETags such as "3-Xq3T"', [
      { field: '/if-match', message: 'must be "*" or a list of ETags' }
    ])
  }
  // Strong comparison (RFC 9110 §13.1.1): a weak tag never matches.
  return { tags: tags.filter((tag) => !tag.weak).map((tag) => `"${tag.opaque}"`) }
}

/**
 * The versions of account `id` the precondition allows, or 'any'. Only tags of this account count:
 * the rest can never match, whatever its version.
 */
export function allowedVersions(precondition: Precondition | undefined, id: string): number[] | 'any' {
  if (precondition === undefined || 'any' in precondition) return 'any'
  const suffix = `-${routingTagOf(id)}"`
  // Strong comparison is character for character: "01-…" or "1e0-…" is not version 1's tag. A
  // version past the column's range cannot exist (and PostgreSQL would refuse it as a parameter).
  return precondition.tags
    .filter((tag) => tag.endsWith(suffix))
    .map((tag) => tag.slice(1, -suffix.length))
    .filter((version) => /^[1-9][0-9]{0,9}$/.test(version) && Number(version) <= MAX_VERSION)
    .map(Number)
}

/** `If-None-Match` (weak comparison, RFC 9110 §13.1.2): true when the client's copy is current. */
export function ifNoneMatchHits(header: string | undefined, tag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  return (entityTags(header) ?? []).some((candidate) => `"${candidate.opaque}"` === tag)
}
