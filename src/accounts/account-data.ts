/**
 * The limits on a user's free-form `data`, the same on every database:
 * at most 16 KiB as JSON, at most 32 levels deep, and no U+0000 (PostgreSQL's jsonb cannot hold it).
 */
export const MAX_DATA_BYTES = 16 * 1024
export const MAX_DATA_DEPTH = 32

/** Why `data` cannot be stored, or undefined when it can. Walks iteratively: no input can overflow the stack. */
export function accountDataProblem(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'must be a JSON object'
  const pending: Array<[unknown, number]> = [[data, 1]]
  while (pending.length) {
    const [value, depth] = pending.pop()!
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return 'must not contain the character U+0000'
    } else if (typeof value === 'object' && value !== null) {
      if (depth > MAX_DATA_DEPTH) return `must be at most ${MAX_DATA_DEPTH} levels deep`
      for (const [key, child] of Object.entries(value)) {
        if (key.includes('\u0000')) return 'must not contain the character U+0000'
        pending.push([child, depth + 1])
      }
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(data), 'utf8')
  if (bytes > MAX_DATA_BYTES) return `must be at most ${MAX_DATA_BYTES} bytes as JSON (it is ${bytes})`
  return undefined
}
