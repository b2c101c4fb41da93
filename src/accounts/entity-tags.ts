/**
 * Accounts' entity tags (RFC 9110 §8.8.3) and the preconditions that name them. A tag is the
 * account's version and its routing tag (sessions/tokens.ts), so a tag of one account never
 * matches another, nor the account a deleted one's username was signed up for again.
 */
import { problems } from '../errors/problem.js'
import { routingTagOf } from '../sessions/tokens.js'
import type { Account } from './account.js'

/** The strong ETag of the account as it is now. */
export function entityTag(account: Pick<Account, 'id' | 'version'>): string {
  return `"${account.version}-${routingTagOf(account.id)}"`
}

/** What `If-Match` asks for: any current version (`*`), or one of these tags. */
export type Precondition = { any: true } | { tags: string[] }

const ENTITY_TAG = /^(W\/)?"([\x21\x23-\x7e]*)"$/

/** The entity tags of a list header, weak ones marked; undefined when the header is malformed. */
function entityTags(header: string): { weak: boolean; opaque: string }[] | undefined {
  const tags: { weak: boolean; opaque: string }[] = []
  for (const item of header.split(',')) {
    const text = item.trim()
    if (text === '') continue
    const match = ENTITY_TAG.exec(text)
    if (!match) return undefined
    tags.push({ weak: match[1] !== undefined, opaque: match[2]! })
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
  // Strong comparison is character for character: "01-…" or "1e0-…" is not version 1's tag.
  return precondition.tags
    .filter((tag) => tag.endsWith(suffix))
    .map((tag) => tag.slice(1, -suffix.length))
    .filter((version) => /^[1-9][0-9]{0,14}$/.test(version))
    .map(Number)
}

/** `If-None-Match` (weak comparison, RFC 9110 §13.1.2): true when the client's copy is current. */
export function ifNoneMatchHits(header: string | undefined, tag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  return (entityTags(header) ?? []).some((candidate) => `"${candidate.opaque}"` === tag)
}
