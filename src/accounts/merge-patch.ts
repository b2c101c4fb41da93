/**
 * RFC 7396 JSON merge patch: each member of the patch replaces the target's, `null` removes it,
 * and objects merge member by member; anything that is not an object replaces the target whole.
 */
type Json = unknown

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return patch
  const result: Record<string, Json> = {}
  // defineProperty, not assignment: a member named __proto__ stays a plain member.
  const set = (key: string, value: Json) =>
    Object.defineProperty(result, key, { value, enumerable: true, writable: true, configurable: true })
  if (isObject(target)) for (const [key, value] of Object.entries(target)) set(key, value)
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else set(key, mergePatch(result[key], value))
  }
  return result
}

/**
 * Whether two JSON values are equal, object keys in any order (PostgreSQL's jsonb hands keys back
 * in an order of its own, so comparing texts would see a change where there is none).
 */
export function sameJson(a: Json, b: Json): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => sameJson(item, b[i]))
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a)
    return (
      keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && sameJson(a[key], b[key]))
    )
  }
  return a === b
}
