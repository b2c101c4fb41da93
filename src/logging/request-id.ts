/**
 * Request ids: every log line about a request carries its id (`reqId`), and every response says
 * it in `X-Request-Id` (set with the security headers, in one hook). A caller's (or proxy's) own `X-Request-Id` is kept when it is short and made
 * of safe characters, so one id follows a request across services; otherwise a new UUID is made.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

export const REQUEST_ID_HEADER = 'x-request-id'

/** Letters, digits and `. _ : = + / -`, 1 to 128 of them: nothing that could break a header or a log line. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:=+/-]{1,128}$/

/** Fastify's `genReqId`: the caller's id if it is sane, a new UUID otherwise. */
export function requestIdOf(request: IncomingMessage): string {
  const given = request.headers[REQUEST_ID_HEADER]
  return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID()
}
