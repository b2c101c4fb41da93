/**
 * A typed client of the account service over openapi-fetch. It holds the bearer token of the
 * session it logged in with (or was given) and sends it with every request while it has one.
 * It imports nothing from the server, only the generated types, so it runs in a browser too.
 */
import createClient, { type Middleware } from 'openapi-fetch'
import type { paths } from '../../generated/openapi.js'
import { AccountsProblem } from './problem.js'
import type {
  ActiveSession,
  ChangePasswordRequest,
  Credentials,
  EventPage,
  Greeting,
  Profile,
  Session,
  SignUpRequest,
  UpdateUserRequest,
  User,
  UserPage,
  UserPatch
} from './types.js'

export interface AccountsClientOptions {
  /** Where the service answers, e.g. `https://accounts.example.com` (no trailing path needed). */
  baseUrl: string
  /** A token from an earlier login, to carry on that session. */
  token?: string
  /** Another fetch (tests, or an instrumented one); globalThis.fetch otherwise. */
  fetch?: (request: Request) => Promise<Response>
  /** openapi-fetch middleware, run on every request and response in the order given. */
  middleware?: Middleware[]
}

/** A write made only while the account is at the version of an ETag (`412` otherwise). */
export interface Conditional {
  /** An ETag from `etagOf(user)`, or `*` for any version. */
  ifMatch?: string
}

export interface PageOptions {
  /** 1 to 100; 50 by default. */
  limit?: number
  /** The `next` of the page before. */
  after?: string
}

export interface AccountsClient {
  /** The bearer token this client sends, if it has one. */
  readonly token: string | undefined
  setToken(token: string | undefined): void
  /**
   * Creates an account (`POST /user`). With an `idempotencyKey` a retry (after a timeout, say) gets
   * the first answer again instead of a `409`.
   */
  signUp(account: SignUpRequest, options?: { idempotencyKey?: string }): Promise<User>
  /** Opens a session (`POST /auth`); the client keeps its token and sends it from now on. */
  login(credentials: Credentials): Promise<Session>
  /** Ends this client's session (`DELETE /auth`) and forgets its token. */
  logout(): Promise<void>
  /** `GET /`: the caller's profile with a token, the greeting without one. */
  me(): Promise<Profile | Greeting>
  getUser(username: string): Promise<User>
  /** The ETag the service sent with this user (any User this client returned), for `ifMatch`. */
  etagOf(user: User): string | undefined
  /** Replaces the account's `data` (`PUT /user/{username}`). */
  updateUser(username: string, update: UpdateUserRequest, options?: Conditional): Promise<User>
  /** Changes part of the account's `data` (`PATCH /user/{username}`, an RFC 7396 merge patch). */
  patchUser(username: string, patch: UserPatch, options?: Conditional): Promise<User>
  /** Deletes the account and ends all its sessions (`DELETE /user/{username}`). */
  deleteUser(username: string, options?: Conditional): Promise<void>
  /** One page of every account, by username (`GET /users`; administrators). */
  listUsers(options?: PageOptions & { prefix?: string }): Promise<UserPage>
  /** One page of the account's security events, newest first (`GET /user/{username}/events`). */
  listUserEvents(username: string, options?: PageOptions): Promise<EventPage>
  /** One page of every account's events, newest first (`GET /events`; administrators). */
  listEvents(options?: PageOptions): Promise<EventPage>
  /** The account's live sessions, newest first (`GET /user/{username}/sessions`). */
  listSessions(username: string): Promise<ActiveSession[]>
  /** Ends one session by its id (`DELETE /user/{username}/sessions/{sessionId}`). */
  endSession(username: string, sessionId: string): Promise<void>
  /** Signs out everywhere else (`DELETE /user/{username}/sessions`): every session but this client's. */
  endOtherSessions(username: string): Promise<void>
  /** Changes the password (`PUT /user/{username}/password`); every other session ends. */
  changePassword(username: string, change: ChangePasswordRequest): Promise<void>
  /** Suspends an account, ending all its sessions (`PUT /user/{username}/suspension`; administrators). */
  suspend(username: string, reason?: string): Promise<User>
  /** Lifts a suspension (`DELETE /user/{username}/suspension`; administrators). */
  unsuspend(username: string): Promise<void>
}

interface Outcome {
  data?: unknown
  error?: unknown
  response: Response
}

/** The data of a successful response (typed by openapi-fetch from the contract); an AccountsProblem for any other. */
async function unwrap<O extends Outcome>(pending: Promise<O>): Promise<NonNullable<O['data']>> {
  const { data, error, response } = await pending
  if (!response.ok) throw AccountsProblem.fromResponse(response, error)
  return data as NonNullable<O['data']>
}

export function createAccountsClient(options: AccountsClientOptions): AccountsClient {
  const http = createClient<paths>({ baseUrl: options.baseUrl, ...(options.fetch && { fetch: options.fetch }) })
  if (options.middleware?.length) http.use(...options.middleware)
  let token = options.token
  // Each User this client returned, with the ETag it came with.
  const etags = new WeakMap<User, string>()

  /** A user from a response, its ETag remembered for etagOf. */
  async function tagged(pending: Promise<Outcome & { data?: User }>): Promise<User> {
    const outcome = await pending
    const found = await unwrap(Promise.resolve(outcome))
    const etag = outcome.response.headers.get('etag')
    if (etag) etags.set(found, etag)
    return found
  }
  const ifMatch = (conditional: Conditional | undefined) =>
    conditional?.ifMatch === undefined ? {} : { 'If-Match': conditional.ifMatch }

  // Sent on every request while there is a token: public operations ignore it.
  const auth = () => ({ headers: { Authorization: token === undefined ? undefined : `Bearer ${token}` } })
  const user = (username: string) => ({ params: { path: { username } }, ...auth() })

  return {
    get token() {
      return token
    },
    setToken(next) {
      token = next
    },
    signUp: (account, signUpOptions) =>
      tagged(
        http.POST('/user', {
          body: account,
          params: {
            header:
              signUpOptions?.idempotencyKey === undefined ? {} : { 'Idempotency-Key': signUpOptions.idempotencyKey }
          },
          ...auth()
        })
      ),
    async login(credentials) {
      const session = await unwrap(http.POST('/auth', { body: credentials, ...auth() }))
      token = session.token
      return session
    },
    async logout() {
      await unwrap(http.DELETE('/auth', auth()))
      token = undefined
    },
    me: () => unwrap(http.GET('/', auth())),
    getUser: (username) => tagged(http.GET('/user/{username}', user(username))),
    etagOf: (found) => etags.get(found),
    updateUser: (username, update, conditional) =>
      tagged(
        http.PUT('/user/{username}', {
          params: { path: { username }, header: ifMatch(conditional) },
          body: update,
          ...auth()
        })
      ),
    patchUser: (username, patch, conditional) =>
      tagged(
        http.PATCH('/user/{username}', {
          params: { path: { username }, header: ifMatch(conditional) },
          body: patch,
          // openapi-fetch sends JSON as application/json: a merge patch has its own media type.
          headers: { ...auth().headers, 'Content-Type': 'application/merge-patch+json' }
        })
      ),
    deleteUser: (username, conditional) =>
      unwrap(
        http.DELETE('/user/{username}', { params: { path: { username }, header: ifMatch(conditional) }, ...auth() })
      ),
    listUsers: (page = {}) => unwrap(http.GET('/users', { params: { query: page }, ...auth() })),
    listUserEvents: (username, page = {}) =>
      unwrap(http.GET('/user/{username}/events', { params: { path: { username }, query: page }, ...auth() })),
    listEvents: (page = {}) => unwrap(http.GET('/events', { params: { query: page }, ...auth() })),
    listSessions: async (username) => (await unwrap(http.GET('/user/{username}/sessions', user(username)))).sessions,
    endSession: (username, sessionId) =>
      unwrap(
        http.DELETE('/user/{username}/sessions/{sessionId}', {
          params: { path: { username, sessionId } },
          ...auth()
        })
      ),
    endOtherSessions: (username) => unwrap(http.DELETE('/user/{username}/sessions', user(username))),
    changePassword: (username, change) =>
      unwrap(http.PUT('/user/{username}/password', { ...user(username), body: change })),
    suspend: (username, reason) =>
      tagged(
        http.PUT('/user/{username}/suspension', { ...user(username), body: reason === undefined ? {} : { reason } })
      ),
    unsuspend: (username) => unwrap(http.DELETE('/user/{username}/suspension', user(username)))
  }
}
