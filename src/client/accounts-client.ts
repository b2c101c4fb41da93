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
  Greeting,
  Profile,
  Session,
  SignUpRequest,
  UpdateUserRequest,
  User
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

export interface AccountsClient {
  /** The bearer token this client sends, if it has one. */
  readonly token: string | undefined
  setToken(token: string | undefined): void
  /** Creates an account (`POST /user`). */
  signUp(account: SignUpRequest): Promise<User>
  /** Opens a session (`POST /auth`); the client keeps its token and sends it from now on. */
  login(credentials: Credentials): Promise<Session>
  /** Ends this client's session (`DELETE /auth`) and forgets its token. */
  logout(): Promise<void>
  /** `GET /`: the caller's profile with a token, the greeting without one. */
  me(): Promise<Profile | Greeting>
  getUser(username: string): Promise<User>
  /** Replaces the account's `data` (`PUT /user/{username}`). */
  updateUser(username: string, update: UpdateUserRequest): Promise<User>
  /** Deletes the account and ends all its sessions (`DELETE /user/{username}`). */
  deleteUser(username: string): Promise<void>
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
    signUp: (account) => unwrap(http.POST('/user', { body: account, ...auth() })),
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
    getUser: (username) => unwrap(http.GET('/user/{username}', user(username))),
    updateUser: (username, update) => unwrap(http.PUT('/user/{username}', { ...user(username), body: update })),
    deleteUser: (username) => unwrap(http.DELETE('/user/{username}', user(username))),
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
      unwrap(
        http.PUT('/user/{username}/suspension', { ...user(username), body: reason === undefined ? {} : { reason } })
      ),
    unsuspend: (username) => unwrap(http.DELETE('/user/{username}/suspension', user(username)))
  }
}
