/**
 * One face for both generated clients, so the walkthrough is written once and run through each.
 * Every method makes exactly one call of the generated code, configured as a new user would
 * configure it: the base URL, and the bearer token where the operation needs one. What each
 * returns is what the tool handed its caller (status and parsed body), beside the exchange the
 * checked fetch saw on the wire.
 */
import type { Test } from 'tap'
import type { CheckedFetch, Exchange } from './checked-fetch.js'
import { generateHeyApi, generateOrval } from './generate.js'
import { typeErrors } from './typecheck.js'

export type Media = 'json' | 'form'

export interface SignUpBody {
  username: string
  password: string
  data?: Record<string, unknown>
}

export interface Credentials {
  username: string
  password: string
}

/** What a generated call gave back: the status and body it handed over, and what was sent. */
export interface Outcome {
  status: number
  body: any
  exchange: Exchange
}

export interface GeneratedClient {
  tool: 'hey-api' | 'orval'
  signUp(body: SignUpBody, as: Media): Promise<Outcome>
  logIn(credentials: Credentials, as: Media): Promise<Outcome>
  getRoot(token?: string): Promise<Outcome>
  getUser(username: string, token?: string): Promise<Outcome>
  updateUser(username: string, body: { data: Record<string, unknown> }, token: string): Promise<Outcome>
  deleteUser(username: string, token: string): Promise<Outcome>
  logOut(token: string): Promise<Outcome>
  /** The compiler's errors for the generated code and the same calls written as a user would. */
  typeErrors(): Promise<string[]>
}

// ---- @hey-api/openapi-ts ---------------------------------------------------------------------

/** The parts of hey-api's generated code this file calls (it is imported at runtime, untyped). */
type HeyResult = Promise<{ data?: unknown; error?: unknown; response?: Response }>
type HeyCall = (options?: Record<string, unknown>) => HeyResult
interface HeySdk {
  signUp: HeyCall
  logIn: HeyCall
  getRoot: HeyCall
  getUser: HeyCall
  updateUser: HeyCall
  deleteUser: HeyCall
  logOut: HeyCall
}
interface HeyClientModule {
  createClient(config: unknown): unknown
  createConfig(config: { baseUrl: string; auth?: string }): unknown
  urlSearchParamsBodySerializer: { bodySerializer: (body: unknown) => string }
}

/**
 * hey-api's SDK generates one media type per request body: JSON whenever the operation offers it
 * (@hey-api/shared, operationToIrOperation: `contents.find(json) || contents[0]`), so signUp and
 * logIn have no form variant. A form is sent through the same SDK function with the runtime's own
 * urlSearchParamsBodySerializer and the form's Content-Type, the options hey-api gives every call.
 */
function heyForm(client: HeyClientModule): Record<string, unknown> {
  return {
    bodySerializer: client.urlSearchParamsBodySerializer.bodySerializer,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' }
  }
}

/** The walkthrough's calls as a new user writes them against hey-api's SDK. */
const HEY_USAGE = `import { deleteUser, getRoot, getUser, logIn, logOut, signUp, updateUser } from './index.js'
import type { Credentials, SignUpRequest } from './index.js'
import { createClient, createConfig, urlSearchParamsBodySerializer } from './client/index.js'

const client = createClient(createConfig({ baseUrl: 'http://127.0.0.1:8000' }))
const authed = createClient(createConfig({ baseUrl: 'http://127.0.0.1:8000', auth: 'a-token' }))
const account: SignUpRequest = { username: 'ann', password: 'correct horse', data: { tags: ['a'], n: { m: 1 } } }
const credentials: Credentials = { username: 'ann', password: 'correct horse' }
const form = {
  bodySerializer: urlSearchParamsBodySerializer.bodySerializer,
  headers: { 'Content-Type': 'application/x-www-form-urlencoded' }
}

export async function walkthrough(): Promise<string[]> {
  const json = await signUp({ client, body: account })
  const byForm = await signUp({ client, body: account, ...form })
  const session = await logIn({ client, body: credentials })
  const formSession = await logIn({ client, body: credentials, ...form })
  const greeting = await getRoot({ client })
  const user = await getUser({ client: authed, path: { username: 'ann' } })
  const updated = await updateUser({ client: authed, path: { username: 'ann' }, body: { data: { city: 'Porto' } } })
  await logOut({ client: authed })
  await deleteUser({ client: authed, path: { username: 'ann' } })
  const seen: (string | undefined)[] = [
    json.data?.username,
    byForm.error?.type,
    session.data?.token,
    formSession.data?.tokenType,
    user.data?.createdAt,
    updated.error?.detail,
    greeting.data && 'message' in greeting.data ? greeting.data.message : greeting.data?.username
  ]
  return seen.filter((value): value is string => value !== undefined)
}
`

export async function heyApiClient(t: Test, baseUrl: string, wire: CheckedFetch): Promise<GeneratedClient> {
  const { dir, module: sdk, client } = await generateHeyApi<HeySdk, HeyClientModule>(t)
  const configured = (token?: string) =>
    client.createClient(client.createConfig({ baseUrl, ...(token !== undefined && { auth: token }) }))
  const call = async (result: HeyResult): Promise<Outcome> => {
    const { data, error, response } = await result
    // hey-api turns a fetch that threw (a ContractViolation, say) into `error` with no response.
    if (!response) throw error
    return { status: response.status, body: error ?? data, exchange: wire.last() }
  }
  const body = (value: unknown, as: Media) => ({ body: value, ...(as === 'form' && heyForm(client)) })
  return {
    tool: 'hey-api',
    signUp: (value, as) => call(sdk.signUp({ client: configured(), ...body(value, as) })),
    logIn: (value, as) => call(sdk.logIn({ client: configured(), ...body(value, as) })),
    getRoot: (token) => call(sdk.getRoot({ client: configured(token) })),
    getUser: (username, token) => call(sdk.getUser({ client: configured(token), path: { username } })),
    updateUser: (username, value, token) =>
      call(sdk.updateUser({ client: configured(token), path: { username }, body: value })),
    deleteUser: (username, token) => call(sdk.deleteUser({ client: configured(token), path: { username } })),
    logOut: (token) => call(sdk.logOut({ client: configured(token) })),
    typeErrors: () => typeErrors(dir, HEY_USAGE)
  }
}

// ---- orval -----------------------------------------------------------------------------------

type OrvalResult = Promise<{ data: unknown; status: number }>
interface OrvalModule {
  signUpWithJson(body: SignUpBody, options?: RequestInit): OrvalResult
  signUpWithUrlEncoded(body: SignUpBody, options?: RequestInit): OrvalResult
  logInWithJson(body: Credentials, options?: RequestInit): OrvalResult
  logInWithUrlEncoded(body: Credentials, options?: RequestInit): OrvalResult
  getRoot(options?: RequestInit): OrvalResult
  getUser(username: string, options?: RequestInit): OrvalResult
  updateUser(username: string, body: { data: Record<string, unknown> }, options?: RequestInit): OrvalResult
  deleteUser(username: string, options?: RequestInit): OrvalResult
  logOut(options?: RequestInit): OrvalResult
}

/** orval's fetch functions take a RequestInit: the token goes in its headers. */
const bearer = (token?: string): RequestInit =>
  token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } }

/** The walkthrough's calls as a new user writes them against orval's functions. */
const ORVAL_USAGE = `import type { Credentials, SignUpRequest } from './client.js'
import {
  deleteUser,
  getRoot,
  getUser,
  logInWithJson,
  logInWithUrlEncoded,
  logOut,
  signUpWithJson,
  signUpWithUrlEncoded,
  updateUser
} from './client.js'

const account: SignUpRequest = { username: 'ann', password: 'correct horse', data: { tags: ['a'], n: { m: 1 } } }
const credentials: Credentials = { username: 'ann', password: 'correct horse' }
const auth = { headers: { Authorization: 'Bearer a-token' } }

export async function walkthrough(): Promise<string[]> {
  const json = await signUpWithJson(account)
  const byForm = await signUpWithUrlEncoded(account)
  const session = await logInWithJson(credentials)
  const formSession = await logInWithUrlEncoded(credentials)
  const greeting = await getRoot()
  const user = await getUser('ann', auth)
  const updated = await updateUser('ann', { data: { city: 'Porto' } }, auth)
  await logOut(auth)
  await deleteUser('ann', auth)
  return [
    json.status === 201 ? json.data.username : json.data.type,
    byForm.status === 201 ? byForm.data.createdAt : byForm.data.detail,
    session.status === 201 ? session.data.token : session.data.title,
    formSession.status === 201 ? formSession.data.tokenType : formSession.data.type,
    user.status === 200 ? user.data.username : String(user.status),
    updated.status === 200 ? updated.data.updatedAt : String(updated.status),
    greeting.status === 200 ? ('message' in greeting.data ? greeting.data.message : greeting.data.username) : ''
  ]
}
`

export async function orvalClient(t: Test, baseUrl: string, wire: CheckedFetch): Promise<GeneratedClient> {
  const { dir, module: api } = await generateOrval<OrvalModule>(t, baseUrl)
  const call = async (result: OrvalResult): Promise<Outcome> => {
    const { data, status } = await result
    return { status, body: data, exchange: wire.last() }
  }
  return {
    tool: 'orval',
    signUp: (value, as) => call(as === 'json' ? api.signUpWithJson(value) : api.signUpWithUrlEncoded(value)),
    logIn: (value, as) => call(as === 'json' ? api.logInWithJson(value) : api.logInWithUrlEncoded(value)),
    getRoot: (token) => call(api.getRoot(bearer(token))),
    getUser: (username, token) => call(api.getUser(username, bearer(token))),
    updateUser: (username, value, token) => call(api.updateUser(username, value, bearer(token))),
    deleteUser: (username, token) => call(api.deleteUser(username, bearer(token))),
    logOut: (token) => call(api.logOut(bearer(token))),
    typeErrors: () => typeErrors(dir, ORVAL_USAGE)
  }
}
