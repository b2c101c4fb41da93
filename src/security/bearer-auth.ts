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

export function createSecurityHandlers(accounts: Accounts) {
  return {
    async bearerAuth(request: FastifyRequest): Promise<void> {
      try {
        const token = bearerToken(request.headers.authorization)
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
