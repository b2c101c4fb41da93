/**
 * Errors that carry their RFC 9457 problem document. Domain code throws these; the one
 * error handler in `src/http` turns them into `application/problem+json` responses.
 * This module imports nothing, so every layer may use it.
 */
export interface FieldError {
  field: string
  message: string
}

export interface ProblemOptions {
  status: number
  /** The short name of the kind of problem; becomes `urn:account-service:problem:<slug>`. */
  slug: string
  title: string
  detail: string
  headers?: Record<string, string>
  errors?: FieldError[]
  /**
   * False when the detail already says everything the log needs: the error handler then logs the
   * line without the cause and its stack (a refusal under load, when the cores are what is short).
   */
  logsCause?: boolean
}

export const PROBLEM_TYPE_PREFIX = 'urn:account-service:problem:'

export class ProblemError extends Error {
  override name = 'ProblemError'
  readonly status: number
  readonly type: string
  readonly title: string
  readonly detail: string
  readonly headers: Record<string, string>
  readonly errors: FieldError[] | undefined
  readonly logsCause: boolean

  constructor(options: ProblemOptions, cause?: unknown) {
    // A problem is an answer to the client, not a fault: its stack would never be read, and
    // capturing one is the dearest part of refusing a request (a 503 keeps its cause's stack).
    const stackTraceLimit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(options.detail, cause === undefined ? undefined : { cause })
    Error.stackTraceLimit = stackTraceLimit
    this.status = options.status
    this.type = PROBLEM_TYPE_PREFIX + options.slug
    this.title = options.title
    this.detail = options.detail
    this.headers = options.headers ?? {}
    this.errors = options.errors
    this.logsCause = options.logsCause ?? true
  }
}

export const problems = {
  validation: (detail: string, errors?: FieldError[]) =>
    new ProblemError({ status: 400, slug: 'validation', title: 'Bad Request', detail, errors }),

  /** RFC 6750 §3: no `error` attribute when the request carried no credentials at all. */
  missingToken: () =>
    new ProblemError({
      status: 401,
      slug: 'unauthenticated',
      title: 'Unauthorized',
      detail: 'This route needs a bearer token: log in with POST /auth and send "Authorization: Bearer <token>".',
      headers: { 'www-authenticate': 'Bearer realm="accounts"' }
    }),

  invalidToken: () =>
    new ProblemError({
      status: 401,
      slug: 'invalid-token',
      title: 'Unauthorized',
      detail: 'The bearer token is invalid, expired or revoked: log in again with POST /auth.',
      headers: {
        'www-authenticate':
          'Bearer realm="accounts", error="invalid_token", error_description="The token is invalid, expired or revoked"'
      }
    }),

  /** RFC 6750 §3.1 `invalid_request`: which of several Authorization headers counts is anyone's guess. */
  ambiguousAuthorization: (count: number) =>
    new ProblemError({
      status: 400,
      slug: 'ambiguous-authorization',
      title: 'Bad Request',
      detail: `The request carries ${count} Authorization headers: send exactly one, "Authorization: Bearer <token>".`,
      headers: {
        'www-authenticate':
          'Bearer realm="accounts", error="invalid_request", error_description="Send exactly one Authorization header"'
      }
    }),

  invalidCredentials: () =>
    new ProblemError({
      status: 401,
      slug: 'invalid-credentials',
      title: 'Unauthorized',
      detail: 'Wrong username or password.',
      // RFC 9110 §11.6.1: every 401 carries a challenge.
      headers: { 'www-authenticate': 'Bearer realm="accounts"' }
    }),

  forbidden: () =>
    new ProblemError({
      status: 403,
      slug: 'forbidden',
      title: 'Forbidden',
      detail: 'You may only act on your own account.'
    }),

  /** The token is fine; the proof of the current password is not (counts as a failed login). */
  wrongPassword: () =>
    new ProblemError({
      status: 403,
      slug: 'wrong-password',
      title: 'Forbidden',
      detail: 'The current password is wrong.'
    }),

  sessionNotFound: (username: string, sessionId: string) =>
    new ProblemError({
      status: 404,
      slug: 'session-not-found',
      title: 'Not Found',
      detail: `User "${username}" has no live session "${sessionId}".`
    }),

  adminOnly: () =>
    new ProblemError({
      status: 403,
      slug: 'forbidden',
      title: 'Forbidden',
      detail: 'Only administrators may do this.'
    }),

  /** After a right password only: a wrong one is the ordinary 401, so this reveals nothing. */
  accountSuspended: (reason: string | null | undefined) =>
    new ProblemError({
      status: 403,
      slug: 'account-suspended',
      title: 'Forbidden',
      detail: reason ? `This account is suspended: ${reason}` : 'This account is suspended; ask an administrator.'
    }),

  selfSuspension: () =>
    new ProblemError({
      status: 409,
      slug: 'self-suspension',
      title: 'Conflict',
      detail: 'You cannot suspend your own account.'
    }),

  userNotFound: (username: string) =>
    new ProblemError({ status: 404, slug: 'not-found', title: 'Not Found', detail: `There is no user "${username}".` }),

  usernameTaken: (username: string) =>
    new ProblemError({
      status: 409,
      slug: 'username-taken',
      title: 'Conflict',
      detail: `The username "${username}" is taken (usernames are case-insensitive).`
    }),

  /** RFC 9110 §13.1.1: If-Match named a version the account is no longer at; nothing changed. */
  preconditionFailed: (currentTag: string) =>
    new ProblemError({
      status: 412,
      slug: 'precondition-failed',
      title: 'Precondition Failed',
      detail: `The account has changed since the version in If-Match; it is now at ${currentTag}. Read it again, then retry.`
    }),

  /** A retry arrived while the first request with its Idempotency-Key still runs. */
  idempotencyKeyInUse: () =>
    new ProblemError({
      status: 409,
      slug: 'idempotency-key-in-use',
      title: 'Conflict',
      detail: 'A sign-up with this Idempotency-Key is still in progress; retry when it has answered.'
    }),

  /** The Idempotency-Key was used for a different request within its 24 hours. */
  idempotencyKeyReused: () =>
    new ProblemError({
      status: 422,
      slug: 'idempotency-key-reused',
      title: 'Unprocessable Entity',
      detail: 'This Idempotency-Key was used for a different request; use a new key for a new sign-up.'
    }),

  unsupportedMediaType: (mediaType: string, accepted: string[]) =>
    new ProblemError({
      status: 415,
      slug: 'unsupported-media-type',
      title: 'Unsupported Media Type',
      detail: `This operation takes ${accepted.join(' or ')}, not ${mediaType || 'a body without a Content-Type'}.`
    }),

  tooManyRequests: (retryAfterSeconds: number, what = 'Too many requests from this address') =>
    new ProblemError({
      status: 429,
      slug: 'rate-limited',
      title: 'Too Many Requests',
      detail: `${what}; try again in ${Math.max(1, retryAfterSeconds)} s.`,
      headers: { 'retry-after': String(Math.max(1, retryAfterSeconds)) }
    }),

  /** The client already has its share of the password-hashing pool queued or running. */
  tooManyHashes: () =>
    new ProblemError({
      status: 429,
      slug: 'rate-limited',
      title: 'Too Many Requests',
      detail: 'Too many logins and sign-ups from this address are in progress; try again in 1 s.',
      headers: { 'retry-after': '1' }
    }),

  /** A password hash waited its whole deadline (HASH_QUEUE_TIMEOUT_MS) for a thread and never ran. */
  hashQueueTimeout: (waitedSeconds: number) =>
    new ProblemError({
      status: 503,
      slug: 'unavailable',
      title: 'Service Unavailable',
      detail: `Every password-hashing thread stayed busy for ${waitedSeconds} s; try again in ${waitedSeconds} s.`,
      headers: { 'retry-after': String(waitedSeconds) }
    }),

  /**
   * The client hung up before its answer: the work is dropped and nobody reads this (nginx's 499,
   * "client closed request"); a status below 500, so it is not logged as our fault.
   */
  clientClosedRequest: () =>
    new ProblemError({
      status: 499,
      slug: 'client-closed-request',
      title: 'Client Closed Request',
      detail: 'The client closed the connection before the answer was ready.'
    }),

  internal: (cause: unknown) =>
    new ProblemError(
      {
        status: 500,
        slug: 'internal',
        title: 'Internal Server Error',
        detail: 'Something went wrong on our side; it has been logged.'
      },
      cause
    ),

  /**
   * The process is saturated: every database connection stayed busy past the wait a request may
   * have, or its event loop lags too far behind to answer in time. Refused fast, so clients back
   * off and retry instead of piling up (`reason` says which, with its figure).
   */
  overloaded: (reason: string, cause?: unknown) =>
    new ProblemError(
      {
        status: 503,
        slug: 'overloaded',
        title: 'Service Unavailable',
        detail: `The service is overloaded: ${reason}; try again in 1 s.`,
        headers: { 'retry-after': '1' },
        logsCause: false
      },
      cause
    ),

  unavailable: (what: string, cause?: unknown) =>
    new ProblemError(
      {
        status: 503,
        slug: 'unavailable',
        title: 'Service Unavailable',
        detail: `The ${what} is unreachable; try again shortly.`,
        headers: { 'retry-after': '1' }
      },
      cause
    )
}
