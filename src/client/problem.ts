/**
 * Every error the service answers is an RFC 9457 problem document; the client throws it as an
 * AccountsProblem, so callers branch on `status` or `type` instead of parsing bodies.
 */
import type { Problem } from './types.js'

export class AccountsProblem extends Error {
  override readonly name = 'AccountsProblem'
  readonly status: number
  /** A URI naming the kind of problem, e.g. `urn:account-service:problem:username-taken`. */
  readonly type: string
  readonly title: string
  readonly detail: string
  /** The whole problem document, `errors` (one per wrong field) included. */
  readonly problem: Problem
  /** The response headers: `WWW-Authenticate` on a 401, `Retry-After` on a 429 or 503. */
  readonly headers: Headers

  constructor(problem: Problem, headers: Headers = new Headers()) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`)
    this.status = problem.status
    this.type = problem.type
    this.title = problem.title
    this.detail = problem.detail
    this.problem = problem
    this.headers = headers
  }

  /**
   * The problem a failed response carries. Something in between (a proxy, a gateway) may answer
   * with a body that is no problem document; that is still reported as one, with what it said.
   */
  static fromResponse(response: Response, body: unknown): AccountsProblem {
    if (isProblem(body)) return new AccountsProblem(body, response.headers)
    const said = typeof body === 'string' ? body.trim().slice(0, 200) : ''
    return new AccountsProblem(
      {
        type: 'about:blank',
        title: response.statusText || 'HTTP error',
        status: response.status,
        detail: said || `The server answered ${response.status} without a problem document.`
      },
      response.headers
    )
  }
}

function isProblem(body: unknown): body is Problem {
  if (typeof body !== 'object' || body === null) return false
  const { type, title, status, detail } = body as Record<string, unknown>
  return (
    typeof type === 'string' && typeof title === 'string' && typeof status === 'number' && typeof detail === 'string'
  )
}
