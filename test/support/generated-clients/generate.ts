/**
 * Generates a client from openapi.yaml with each tool, the way its documentation tells a new user
 * to, into a folder of its own under node_modules/.cache (never committed, outside every tsconfig
 * and lint glob, and removed when the test ends), then imports it. Nothing here edits what a tool
 * wrote: the test uses the code exactly as generated.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createClient as heyApi } from '@hey-api/openapi-ts'
import { generate as orval } from 'orval'
import type { Test } from 'tap'

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
export const SPEC = join(ROOT, 'openapi.yaml')

/** A fresh, empty folder for one generated client; removed when the test ends. */
async function outputFolder(t: Test, tool: string): Promise<string> {
  const dir = join(ROOT, 'node_modules', '.cache', 'generated-clients', `${tool}-${randomBytes(4).toString('hex')}`)
  await mkdir(dir, { recursive: true })
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export interface Generated<Module> {
  /** Where the client was written. */
  dir: string
  module: Module
}

/**
 * @hey-api/openapi-ts with its fetch client: an SDK function per operation, a client whose base
 * URL and bearer token are set at runtime. The client runtime is bundled into the output.
 */
export async function generateHeyApi<Sdk, Client>(t: Test): Promise<Generated<Sdk> & { client: Client }> {
  const dir = await outputFolder(t, 'hey-api')
  await heyApi({
    input: SPEC,
    output: { path: dir },
    plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
    logs: { level: 'silent', file: false }
  })
  return {
    dir,
    module: await import(pathToFileURL(join(dir, 'index.ts')).href),
    client: await import(pathToFileURL(join(dir, 'client', 'index.ts')).href)
  }
}

/**
 * orval with `client: 'fetch'`: one file, a function per operation calling the global fetch. Its
 * base URL is fixed at generation (`baseUrl`); `splitByContentType` is orval's documented switch
 * for a request body offered in several media types: one function per media type
 * (signUpWithJson, signUpWithUrlEncoded) instead of one that sends JSON only.
 */
export async function generateOrval<Module>(
  t: Test,
  baseUrl: string | { getBaseUrlFromSpecification: true }
): Promise<Generated<Module>> {
  const dir = await outputFolder(t, 'orval')
  const target = join(dir, 'client.ts')
  await orval(
    {
      input: { target: SPEC },
      output: { target, client: 'fetch', mode: 'single', baseUrl, override: { splitByContentType: true } }
    },
    ROOT,
    { logLevel: 'error' }
  )
  return {
    dir,
    module: await import(pathToFileURL(target).href)
  }
}

/**
 * The base URL each client calls when the user configures none: hey-api's generated default
 * client, and orval asked to take it from the spec (`getBaseUrlFromSpecification`).
 */
export async function defaultBaseUrls(t: Test): Promise<{ heyApi: string | undefined; orval: string }> {
  const hey = await generateHeyApi<unknown, unknown>(t)
  const { client } = await import(pathToFileURL(join(hey.dir, 'client.gen.ts')).href)
  const orvalClient = await generateOrval<{ getGetRootUrl(): string }>(t, { getBaseUrlFromSpecification: true })
  return { heyApi: client.getConfig().baseUrl, orval: orvalClient.module.getGetRootUrl().replace(/\/$/, '') }
}
