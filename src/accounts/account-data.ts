/**
 * The limits on a user's free-form `data`, the same on every database: a JSON object of at most
 * 16 KiB, at most 32 levels deep counting the innermost values (so at most 31 nested objects or
 * arrays: MariaDB's JSON check refuses a 32nd), whose strings are well-formed Unicode without U+0000 (PostgreSQL's
 * jsonb cannot hold U+0000, and a lone surrogate cannot be stored as UTF-8 anywhere), and whose
 * numbers are finite (JSON has no Infinity: 1e400 would silently come back as null).
 */
export const MAX_DATA_BYTES = 16 * 1024
export const MAX_DATA_DEPTH = 32

function stringProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return 'must not contain the character U+0000'
  if (!text.isWellFormed()) return 'must not contain unpaired surrogates (invalid Unicode)'
  return undefined
}

/**
 * True when the value nests objects or arrays deeper than `MAX_DATA_DEPTH` levels (counting as
 * accountDataProblem does). Iterative, so that a merge patch can be checked before it is walked
 * recursively.
 */
export function nestedTooDeep(value: unknown): boolean {
  const pending: Array<[unknown, number]> = [[value, 1]]
  while (pending.length) {
    const [item, depth] = pending.pop()!
    if (typeof item !== 'object' || item === null) continue
    if (depth >= MAX_DATA_DEPTH) return true
    for (const child of Object.values(item)) pending.push([child, depth + 1])
  }
  return false
}

/** Why `data` cannot be stored, or undefined when it can. Walks iteratively: no input can overflow the stack. */
export function accountDataProblem(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'must be a JSON object'
  const pending: Array<[unknown, number]> = [[data, 1]]
  while (pending.length) {
    const [value, depth] = pending.pop()!
    if (typeof value === 'string') {
      const problem = stringProblem(value)
      if (problem) return problem
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) return 'must not contain numbers beyond the range of a double'
    } else if (typeof value === 'object' && value !== null) {
      if (depth >= MAX_DATA_DEPTH) return `must be at most ${MAX_DATA_DEPTH} levels deep`
      for (const [key, child] of Object.entries(value)) {
        const problem = stringProblem(key)
        if (problem) return problem
        pending.push([child, depth + 1])
      }
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(data), 'utf8')
  if (bytes > MAX_DATA_BYTES) return `must be at most ${MAX_DATA_BYTES} bytes as JSON (it is ${bytes})`
  return undefined
}
