/**
 * What a password must be: 8 to 72 characters of well-formed Unicode, counted as JSON Schema
 * counts them (code points), so `openapi.yaml` states the rule exactly and a client's validator
 * agrees with ours. bcrypt reads only 72 bytes: a longer password is hashed whole first
 * (bcrypt-input.js), so every character counts however many bytes it takes.
 */
export const MAX_PASSWORD_CHARACTERS = 72
export const MIN_PASSWORD_CHARACTERS = 8

/** Characters as JSON Schema's minLength and maxLength count them: '😀' is one, not two. */
export function characterCount(text: string): number {
  let count = 0
  for (const _ of text) count++
  return count
}

/** Why a password cannot be used, or undefined when it can. */
export function passwordProblem(password: string): string | undefined {
  if (!password.isWellFormed()) return 'must be valid Unicode (it contains an unpaired surrogate)'
  const length = characterCount(password)
  if (length > MAX_PASSWORD_CHARACTERS) return `must be at most ${MAX_PASSWORD_CHARACTERS} characters (it is ${length})`
  if (length < MIN_PASSWORD_CHARACTERS)
    return `must be at least ${MIN_PASSWORD_CHARACTERS} characters (it is ${length})`
  return undefined
}

/** At login, only what could never have been signed up, or would be compared wrongly, is refused. */
export function loginPasswordProblem(password: string): string | undefined {
  const problem = passwordProblem(password)
  return problem && !problem.startsWith('must be at least') ? problem : undefined
}
