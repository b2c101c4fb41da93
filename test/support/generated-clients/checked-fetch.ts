/**
 * The generated clients call the global fetch, and a new user configures nothing but the base URL
 * and the token, so the contract check sits there: for the length of a test, globalThis.fetch is
 * a wrapper that checks every response against openapi.yaml (test/contract.ts) and throws a
 * ContractViolation into the client call that received a drifted one. It also keeps each exchange,
 * so an assertion can show the request that was sent beside the response.
 */
import type { Test } from 'tap'
import { assertHonoursContract } from '../../contract.js'

export interface Exchange {
  request: { method: string; path: string; contentType: string | null; authorization: boolean; body?: string }
  response: { status: number; contentType: string; body: unknown }
}

export interface CheckedFetch {
  /** Every exchange since install, oldest first. */
  readonly exchanges: readonly Exchange[]
  /** The most recent exchange; throws when there was none (a client that sent nothing). */
  last(): Exchange
}

async function readRequest(request: Request): Promise<Exchange['request']> {
  const body = request.body ? await request.clone().text() : undefined
  return {
    method: request.method,
    path: new URL(request.url).pathname,
    contentType: request.headers.get('content-type'),
    authorization: request.headers.has('authorization'),
    ...(body !== undefined && { body })
  }
}

async function readResponse(response: Response): Promise<Exchange['response'] & { headers: Headers }> {
  const text = await response.clone().text()
  const contentType = response.headers.get('content-type') ?? ''
  const body = text === '' ? undefined : contentType.includes('json') ? JSON.parse(text) : text
  return { status: response.status, contentType, body, headers: response.headers }
}

/** Frames of this folder, cut from a violation's stack so the report points at the test's line. */
const SUPPORT = /\/test\/support\/generated-clients\//

function pointedAtTheTest(error: unknown): unknown {
  if (!(error instanceof Error) || !error.stack) return error
  const [headline, ...frames] = error.stack.split('\n')
  error.stack = [headline, ...frames.filter((frame) => !SUPPORT.test(frame))].join('\n')
  return error
}

/** Replaces globalThis.fetch with a contract-checking one until the test ends. */
export function installCheckedFetch(t: Test): CheckedFetch {
  const original = globalThis.fetch
  const exchanges: Exchange[] = []
  const checked: typeof fetch = async (input, init) => {
    // hey-api passes a Request, orval a URL and an init: one Request serves both.
    const request = new Request(input, init)
    const sent = await readRequest(request)
    const response = await original(request)
    const { headers, ...received } = await readResponse(response)
    exchanges.push({ request: sent, response: received })
    try {
      assertHonoursContract(sent, { ...received, headers })
    } catch (error) {
      throw pointedAtTheTest(error)
    }
    return response
  }
  globalThis.fetch = checked
  t.teardown(() => {
    globalThis.fetch = original
  })
  return {
    exchanges,
    last() {
      const exchange = exchanges.at(-1)
      if (!exchange) throw new Error('no request reached fetch')
      return exchange
    }
  }
}
