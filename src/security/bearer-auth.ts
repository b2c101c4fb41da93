/**
 * The security handler for the contract's `bearerAuth` scheme (fastify-openapi-glue calls it by
 * that name). It throws to refuse and sets `request.account` to accept.
 */
import type { FastifyRequest } from 'fastify'
import type { Accounts } from '../accounts/accounts.js'
import type { Account } from '../accounts/account.js'
import { problems } from '../errors/problem.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's account, once a bearer token has been accepted. */
    account: Account | null
    /** The accepted bearer token, so logout can end exactly this session. */
    token: string | null
    /** Why the bearer token was refused; GET / reads it because it also lets anonymous callers in. */
    authError: unknown
  }
}

/** The token from `Authorization: Bearer <token>`; the scheme name is case-insensitive (RFC 7235). */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === '') throw problems.missingToken()
  const match = /^Bearer +(\S+) *$/i.exec(header)
  if (!match?.[1]) throw problems.invalidToken()
  return match[1]
}

/**
 * Authorization headers as sent. Node keeps only the first of several in `request.headers`, so a
 * proxy that read the last one and this service would each act on a different token.
 */
export function authorizationHeaderCount(rawHeaders: readonly string[]): number {
  let count = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (name.length === 13 && name.toLowerCase() === 'authorization') count++
  }
  return count
}

export function createSecurityHandlers(accounts: Accounts) {
  return {
    async bearerAuth(request: FastifyRequest): Promise<void> {
      try {
        const header = request.headers.authorization
        // Only a request with one header can have more; an anonymous one pays nothing for the check.
        if (header !== undefined) {
          const count = authorizationHeaderCount(request.raw.rawHeaders)
          if (count > 1) throw problems.ambiguousAuthorization(count)
        }
        const token = bearerToken(header)
        const account = await accounts.authenticate(token)
        if (!account) throw problems.invalidToken()
        request.account = account
        request.token = token
      } catch (error) {
        request.authError = error
        throw error
      }
    }
  }
}
