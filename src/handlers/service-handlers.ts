/**
 * One method per operationId of openapi.yaml; fastify-openapi-glue routes each operation here
 * after validating the request against the contract. Handlers stay thin: they unpack the
 * request, call the account use cases, and shape the reply.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { components, operations } from '../../generated/openapi.js'
import { everyAccountBy, seesEventOrigin, seesSuspensionReason } from '../accounts/access-policy.js'
import type { AccountDirectory } from '../accounts/account-directory.js'
import type { Accounts, Throttled } from '../accounts/accounts.js'
import type { Account } from '../accounts/account.js'
import { entityTag, ifNoneMatchHits, parseIfMatch } from '../accounts/entity-tags.js'
import type { AuditTrail } from '../audit/audit-trail.js'
import { problems } from '../errors/problem.js'
import type { Readiness } from '../health/readiness.js'
import { clientKeyOf } from '../passwords/client-key.js'
import type { HashContext } from '../passwords/hash-scheduler.js'
import type { IdempotentSignUps } from '../idempotency/idempotent-sign-ups.js'
import { DEFAULT_PAGE_LIMIT, nextPageLink } from '../http/pagination.js'
import type { LoginThrottle } from '../rate-limits/login-throttle.js'
import { presentActiveSession, presentEvent, presentSession, presentUser } from './presenters.js'

type Schemas = components['schemas']
type UserParams = operations['getUser']['parameters']['path']
type SessionParams = operations['endSession']['parameters']['path']
type PageQuery = NonNullable<operations['listEvents']['parameters']['query']>
type UserQuery = NonNullable<operations['listUsers']['parameters']['query']>
type Request<Shape extends { Body?: unknown; Params?: unknown; Querystring?: unknown } = Record<never, never>> =
  FastifyRequest<Shape>

/** The glue's security handler guarantees an account on every route that requires a token. */
function actorOf(request: FastifyRequest): Account {
  if (!request.account) throw problems.missingToken()
  return request.account
}

/**
 * Whose share of the hash pool the request's password takes (its address: `request.ip` honours
 * TRUST_PROXY), and a signal aborted when the client hangs up before its answer is sent, so a
 * hash still queued for it is dropped.
 */
function hashCaller(request: FastifyRequest, reply: FastifyReply): HashContext {
  const controller = new AbortController()
  const response = reply.raw
  if (request.raw.socket.destroyed) controller.abort()
  // 'close' comes when the response is done, or when its connection ended first: only that aborts.
  response.once('close', () => {
    if (!response.writableFinished) controller.abort()
  })
  return { client: clientKeyOf(request.ip), signal: controller.signal }
}

/** Sends the account with its ETag (every answer that returns a user carries one). */
function sendUser(reply: FastifyReply, user: Account, actor: Account, tag = entityTag(user)) {
  return reply.header('etag', tag).send(presentUser(user, seesSuspensionReason(actor)))
}

/** Sets the `Link` to the next page, when there is one. */
function linkNext(request: FastifyRequest, reply: FastifyReply, next: string | null): void {
  const link = nextPageLink(request.url, next)
  if (link) reply.header('link', link)
}

export interface HandlerDependencies {
  accounts: Accounts
  directory: AccountDirectory
  audit: AuditTrail
  signUps: IdempotentSignUps
  loginThrottle: LoginThrottle
  readiness: Readiness
}

export class ServiceHandlers {
  private readonly accounts: Accounts
  private readonly directory: AccountDirectory
  private readonly audit: AuditTrail
  private readonly signUps: IdempotentSignUps
  private readonly loginThrottle: LoginThrottle
  private readonly readiness: Readiness

  constructor(dependencies: HandlerDependencies) {
    this.accounts = dependencies.accounts
    this.directory = dependencies.directory
    this.audit = dependencies.audit
    this.signUps = dependencies.signUps
    this.loginThrottle = dependencies.loginThrottle
    this.readiness = dependencies.readiness
  }

  async getRoot(request: Request): Promise<Schemas['Greeting'] | Schemas['Profile']> {
    // The bearer scheme is optional here, so a refused token falls through to anonymous: a token
    // that was sent but refused must still be a 401 (or a 503 when the store is down).
    if (request.headers.authorization !== undefined && !request.account) {
      throw request.authError ?? problems.invalidToken()
    }
    if (!request.account) return { message: 'Hello World' }
    return { username: request.account.username, data: request.account.data }
  }

  async signUp(request: Request<{ Body: Schemas['SignUpRequest'] }>, reply: FastifyReply) {
    const caller = hashCaller(request, reply)
    const key = request.headers['idempotency-key'] as string | undefined
    // A replay checks the password: under the failed-login limit, like a login.
    const throttled: Throttled = (check) => this.loginThrottle.attempt(caller.client, request.body.username, check)
    const { response, replayed } = await this.signUps.run(key, request.body, caller, throttled, async () => {
      const user = await this.accounts.signUp(request.body, caller)
      request.auditTarget = { id: user.id, username: user.username }
      return {
        accountId: user.id,
        response: {
          status: 201,
          headers: { location: `/user/${encodeURIComponent(user.username)}`, etag: entityTag(user) },
          body: presentUser(user)
        }
      }
    })
    if (replayed) reply.header('idempotent-replayed', 'true')
    return reply.code(response.status).headers(response.headers).send(response.body)
  }

  async getUser(request: Request<{ Params: UserParams }>, reply: FastifyReply) {
    const actor = actorOf(request)
    const user = await this.accounts.read(actor, request.params.username)
    const tag = entityTag(user)
    if (ifNoneMatchHits(request.headers['if-none-match'], tag)) return reply.code(304).header('etag', tag).send()
    return sendUser(reply, user, actor, tag)
  }

  async updateUser(request: Request<{ Params: UserParams; Body: Schemas['UpdateUserRequest'] }>, reply: FastifyReply) {
    const actor = actorOf(request)
    const precondition = parseIfMatch(request.headers['if-match'])
    const user = await this.accounts.replaceData(
      actor,
      request.params.username,
      request.body.data,
      precondition,
      request.begunChange ?? undefined
    )
    return sendUser(reply, user, actor)
  }

  async patchUser(request: Request<{ Params: UserParams; Body: Schemas['UserPatch'] }>, reply: FastifyReply) {
    const actor = actorOf(request)
    const precondition = parseIfMatch(request.headers['if-match'])
    const { account, changed } = await this.accounts.patchData(
      actor,
      request.params.username,
      request.body,
      precondition,
      request.begunChange ?? undefined
    )
    request.changedNothing = !changed
    return sendUser(reply, account, actor)
  }

  async deleteUser(request: Request<{ Params: UserParams }>, reply: FastifyReply) {
    const precondition = parseIfMatch(request.headers['if-match'])
    const removed = await this.accounts.remove(actorOf(request), request.params.username, precondition)
    request.auditTarget = { id: removed.id, username: removed.username }
    return reply.code(204).send()
  }

  async listUsers(request: Request<{ Querystring: UserQuery }>, reply: FastifyReply): Promise<Schemas['UserPage']> {
    const actor = actorOf(request)
    everyAccountBy(actor)
    const { limit = DEFAULT_PAGE_LIMIT, after, prefix } = request.query
    const page = await this.directory.list({ limit, after, prefix })
    linkNext(request, reply, page.next)
    return { users: page.users.map((user) => presentUser(user, seesSuspensionReason(actor))), next: page.next }
  }

  async listUserEvents(
    request: Request<{ Params: UserParams; Querystring: PageQuery }>,
    reply: FastifyReply
  ): Promise<Schemas['EventPage']> {
    const viewer = actorOf(request)
    const target = await this.accounts.read(viewer, request.params.username)
    const { limit = DEFAULT_PAGE_LIMIT, after } = request.query
    const page = await this.audit.forAccount(target.id, { limit, after })
    linkNext(request, reply, page.next)
    return {
      events: page.events.map((event) => presentEvent(event, seesEventOrigin(viewer, event.actor))),
      next: page.next
    }
  }

  async listEvents(request: Request<{ Querystring: PageQuery }>, reply: FastifyReply): Promise<Schemas['EventPage']> {
    everyAccountBy(actorOf(request))
    const { limit = DEFAULT_PAGE_LIMIT, after } = request.query
    const page = await this.audit.all({ limit, after })
    linkNext(request, reply, page.next)
    return { events: page.events.map((event) => presentEvent(event, true)), next: page.next }
  }

  async logIn(request: Request<{ Body: Schemas['Credentials'] }>, reply: FastifyReply) {
    const { username, password } = request.body
    const caller = hashCaller(request, reply)
    // Failures count per username and client (an IPv6 /64 is one client), like the hash pool's shares.
    const session = await this.loginThrottle.attempt(caller.client, username, () =>
      this.accounts.logIn(username, password, caller, { userAgent: request.headers['user-agent'], ip: request.ip })
    )
    return reply.code(201).send(presentSession(session))
  }

  async listSessions(request: Request<{ Params: UserParams }>): Promise<Schemas['SessionList']> {
    const sessions = await this.accounts.listSessions(
      actorOf(request),
      request.params.username,
      request.token ?? undefined
    )
    return { sessions: sessions.map(presentActiveSession) }
  }

  async endSession(request: Request<{ Params: SessionParams }>, reply: FastifyReply) {
    await this.accounts.endSession(actorOf(request), request.params.username, request.params.sessionId)
    return reply.code(204).send()
  }

  async endOtherSessions(request: Request<{ Params: UserParams }>, reply: FastifyReply) {
    await this.accounts.endOtherSessions(actorOf(request), request.params.username, request.token ?? undefined)
    return reply.code(204).send()
  }

  async changePassword(
    request: Request<{ Params: UserParams; Body: Schemas['ChangePasswordRequest'] }>,
    reply: FastifyReply
  ) {
    const { username } = request.params
    const caller = hashCaller(request, reply)
    // A wrong current password counts as a failed login for this username and client.
    await this.accounts.changePassword(
      actorOf(request),
      username,
      request.body,
      caller,
      request.token ?? undefined,
      (check) => this.loginThrottle.attempt(caller.client, username, check)
    )
    return reply.code(204).send()
  }

  async suspend(request: Request<{ Params: UserParams; Body: Schemas['SuspendRequest'] }>, reply: FastifyReply) {
    const actor = actorOf(request)
    const user = await this.accounts.suspend(actor, request.params.username, request.body.reason ?? null)
    return sendUser(reply, user, actor)
  }

  async unsuspend(request: Request<{ Params: UserParams }>, reply: FastifyReply) {
    request.changedNothing = !(await this.accounts.unsuspend(actorOf(request), request.params.username))
    return reply.code(204).send()
  }

  async logOut(request: Request, reply: FastifyReply) {
    actorOf(request)
    if (request.token) await this.accounts.logOut(request.token)
    return reply.code(204).send()
  }

  async getHealth(): Promise<Schemas['Health']> {
    return { status: 'ok' }
  }

  async getReadiness(): Promise<Schemas['Readiness']> {
    await this.readiness.check()
    return { status: 'ready', checks: { database: 'ok', sessions: 'ok' } }
  }
}
