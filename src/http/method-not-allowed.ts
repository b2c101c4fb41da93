/**
 * For a request no route matched: the methods its path does allow, if the path is one the
 * contract (or the docs) serves, so the answer can be 405 with `Allow` rather than 404.
 */
import { specDocument } from '../../generated/contract.js'

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head']

const contractPaths = Object.entries(specDocument.paths as Record<string, Record<string, unknown>>).map(
  ([template, item]) => {
    const methods = METHODS.filter((method) => method in item).map((method) => method.toUpperCase())
    // `/user/{username}` -> /^\/user\/[^/]+$/
    const pattern = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`)
    return { pattern, methods }
  }
)

const docsPaths = [/^\/openapi\.(json|yaml)$/, /^\/docs(\/.*)?$/]

export function allowedMethods(url: string): string[] | undefined {
  const path = url.split('?')[0]!
  const match = contractPaths.find(({ pattern }) => pattern.test(path))
  if (match) return match.methods
  if (docsPaths.some((pattern) => pattern.test(path))) return ['GET']
  return undefined
}
