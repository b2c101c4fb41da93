/**
 * Imports run one way, the way a request flows (docs/architecture.md):
 *   entry points and plugins → the HTTP edge → domain modules → stores → errors and config.
 * A module may import its own layer or any layer below it, never one above; and no module imports
 * itself back through a cycle. Read from the source, so a new import that breaks the rule fails here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'

const SRC = resolve(import.meta.dirname, '../src')

/** Lower numbers sit higher in the request's path. */
const LAYERS: Record<string, number> = {
  '.': 0, // app.ts, server.ts, serve.ts, cluster.ts
  plugins: 0,
  handlers: 1,
  security: 1,
  http: 1,
  health: 1,
  metrics: 1,
  logging: 1,
  accounts: 2,
  audit: 2,
  sessions: 2,
  passwords: 2,
  idempotency: 2,
  'rate-limits': 2,
  db: 3,
  redis: 3,
  errors: 4,
  config: 4
}

/**
 * Files whose layer is not their folder's. The account's and the session's types (and the username
 * rule) are the vocabulary of every layer (the stores map their rows to them), so they sit at the bottom.
 */
const FILE_LAYERS: Record<string, number> = {
  'accounts/account.ts': 4,
  'sessions/session.ts': 4
}

function layerOf(file: string): number | undefined {
  return FILE_LAYERS[relative(SRC, file)] ?? LAYERS[area(file)]
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return /\.(ts|js)$/.test(name) && !name.endsWith('.d.ts') ? [path] : []
  })
}

/** The folder directly under src/ that holds a file ('.' for src itself). */
function area(file: string): string {
  const parts = relative(SRC, file).split('/')
  return parts.length === 1 ? '.' : parts[0]!
}

/** Our own imports of a file, as absolute .ts paths inside src/. */
function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((match) => match[1]!)
  return specifiers
    .map((specifier) => resolve(dirname(file), specifier).replace(/\.js$/, '.ts'))
    .filter((path) => path.startsWith(`${SRC}/`))
    .map((path) => (statSync(path, { throwIfNoEntry: false }) ? path : path.replace(/\.ts$/, '.js')))
}

// The typed client is a separate product: it may import only the generated types (client.test.ts).
const files = sourceFiles(SRC).filter((file) => area(file) !== 'client')
const graph = new Map(files.map((file) => [file, localImports(file)]))

t.test('every folder under src/ has a layer', async (t) => {
  for (const file of files) t.ok(layerOf(file) !== undefined, `${relative(SRC, file)} is in a known layer`)
})

t.test('nothing imports a layer above its own', async (t) => {
  const violations: string[] = []
  for (const [file, imports] of graph) {
    for (const target of imports) {
      if ((layerOf(target) ?? 99) < (layerOf(file) ?? -1)) {
        violations.push(`${relative(SRC, file)} imports ${relative(SRC, target)}`)
      }
    }
  }
  t.same(violations, [], 'imports only go down')
  t.ok(graph.size > 40, `${graph.size} modules read`)
})

t.test('no import cycles', async (t) => {
  const cycles: string[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return
    if (state.get(file) === 'visiting') {
      cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(' → '))
      return
    }
    state.set(file, 'visiting')
    for (const target of graph.get(file) ?? []) visit(target, [...path, file])
    state.set(file, 'done')
  }
  for (const file of graph.keys()) visit(file, [])
  t.same(cycles, [], 'the import graph has no cycles')
})

t.test('the rules about who may touch an account live in one file', async (t) => {
  const callers = files.filter((file) => /\baccessTo\(/.test(readFileSync(file, 'utf8')))
  t.same(
    callers.map((file) => relative(SRC, file)).sort(),
    ['accounts/access-policy.ts', 'accounts/accounts.ts'],
    'accessTo is defined in access-policy.ts and applied only by the account use cases'
  )
})
