/**
 * The security handler for the contract's `bearerAuth` scheme (fastify-openapi-glue calls it by
 * that name). It throws to refuse and sets `request.account` to accept.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Accounts } from '../accounts/accounts.js'
import type { Account } from '../accounts/account.js'
import { problems } from '../errors/problem.js'
import type { BegunChange } from '../sessions/session-store.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's account, once a bearer token has been accepted. */
    account: Account | null
    /** The accepted bearer token, so logout can end exactly this session. */
    token: string | null
    /** Why the bearer token was refused; GET / reads it because it also lets anonymous callers in. */
    authError: unknown
    /** On a route declared `writesAccount`: the change to the caller's account begun with the token's lookup. */
    begunChange: BegunChange | null
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

/**
 * On a route that writes the caller's account, the token's lookup begins the change too (one round
 * trip fewer per write); the handler hands it to the write. Whatever happens next, the answer's
 * end (or the connection's) abandons it if nothing used it.
 */
async function authenticateToChange(
  accounts: Accounts,
  token: string,
  request: FastifyRequest,
  reply: FastifyReply
): Promise<Account | undefined> {
  const found = await accounts.authenticateToChange(token)
  const change = found?.change
  if (change) {
    request.begunChange = change
    // A client gone while the lookup ran has closed the answer already: no 'close' is coming.
    if (reply.raw.destroyed) change.abandon()
    else reply.raw.once('close', () => change.abandon())
  }
  return found?.account
}

export function createSecurityHandlers(accounts: Accounts) {
  return {
    async bearerAuth(request: FastifyRequest, reply: FastifyReply): Promise<void> {
      try {
        const header = request.headers.authorization
        // Only a request with one header can have more; an anonymous one pays nothing for the check.
        if (header !== undefined) {
          const count = authorizationHeaderCount(request.raw.rawHeaders)
          if (count > 1) throw problems.ambiguousAuthorization(count)
        }
        const token = bearerToken(header)
        const account = request.routeOptions.config.writesAccount
          ? await authenticateToChange(accounts, token, request, reply)
          : await accounts.authenticate(token)
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
