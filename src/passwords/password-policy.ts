/**
 * What a password must be: 8 to 72 bytes of well-formed UTF-8. bcrypt reads at most 72 bytes and
 * bcryptjs silently drops the rest, so a longer password is refused rather than truncated.
 */
export const MAX_PASSWORD_BYTES = 72
export const MIN_PASSWORD_BYTES = 8

/** Why a password cannot be used, or undefined when it can. */
export function passwordProblem(password: string): string | undefined {
  if (!password.isWellFormed()) return 'must be valid Unicode (it contains an unpaired surrogate)'
  const bytes = Buffer.byteLength(password, 'utf8')
  if (bytes > MAX_PASSWORD_BYTES)
    return `must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8 (it is ${bytes}): bcrypt ignores the rest`
  if (bytes < MIN_PASSWORD_BYTES) return `must be at least ${MIN_PASSWORD_BYTES} bytes in UTF-8 (it is ${bytes})`
  return undefined
}

/** At login, only what could never have been signed up, or would be compared wrongly, is refused. */
export function loginPasswordProblem(password: string): string | undefined {
  const problem = passwordProblem(password)
  return problem && !problem.startsWith('must be at least') ? problem : undefined
}
