/**
 * The examples of openapi.yaml cannot drift from its schemas: every example (of a request or
 * response body, a parameter, a header, or a schema's own `examples`) must be valid against the
 * schema beside it, every body shows at least one, and every error example is the problem
 * document the service would send for that status. Needs no database.
 */
import { STATUS_CODES } from 'node:http'
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import t from 'tap'
import { parse } from 'yaml'
import { PROBLEM_TYPE_PREFIX } from '../src/errors/problem.js'

type Json = Record<string, any>

const spec: Json = parse(readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8'))
const ajv = new Ajv2020({ strict: false, allErrors: true })
addFormats.default(ajv)
ajv.addSchema(spec, 'openapi')

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']
const escapePointer = (part: string) => part.replaceAll('~', '~0').replaceAll('/', '~1')
const pointer = (path: string[]) => `/${path.map(escapePointer).join('/')}`

/** Follows a local `$ref` (`#/components/...`) to the node and the path it names. */
function deref(node: Json, path: string[]): [Json, string[]] {
  if (typeof node?.$ref !== 'string') return [node, path]
  const target = (node.$ref as string)
    .slice(2)
    .split('/')
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
  return deref(
    target.reduce((at: Json, key) => at[key], spec),
    target
  )
}

interface Example {
  /** Where the example is, for the failure message. */
  at: string
  /** The path of the schema it must be valid against. */
  schema: string[]
  value: unknown
}

const examples: Example[] = []
const bodies: Array<{ at: string; count: number }> = []

/** `example` and `examples` of a media type, parameter or header object. */
function collectBeside(node: Json, path: string[]): number {
  if (!node.schema) return 0
  let count = 0
  if ('example' in node) {
    examples.push({ at: pointer([...path, 'example']), schema: [...path, 'schema'], value: node.example })
    count++
  }
  for (const [name, entry] of Object.entries<Json>(node.examples ?? {})) {
    const [example] = deref(entry, [...path, 'examples', name])
    if ('externalValue' in example) throw new Error(`${pointer(path)}: external examples are not checked; inline it`)
    examples.push({ at: pointer([...path, 'examples', name]), schema: [...path, 'schema'], value: example.value })
    count++
  }
  collectSchema(node.schema, [...path, 'schema'])
  return count
}

/** A schema's own `examples` (JSON Schema keyword), in it and in every schema nested in it. */
function collectSchema(schema: unknown, path: string[]): void {
  if (!schema || typeof schema !== 'object' || '$ref' in schema) return
  const node = schema as Json
  for (const [i, value] of (Array.isArray(node.examples) ? node.examples : []).entries()) {
    examples.push({ at: pointer([...path, 'examples', String(i)]), schema: path, value })
  }
  for (const [name, child] of Object.entries<unknown>(node.properties ?? {}))
    collectSchema(child, [...path, 'properties', name])
  for (const key of ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains'])
    collectSchema(node[key], [...path, key])
  for (const key of ['allOf', 'anyOf', 'oneOf', 'prefixItems']) {
    for (const [i, child] of (node[key] ?? []).entries()) collectSchema(child, [...path, key, String(i)])
  }
}

function collectContent(owner: Json, path: string[]): void {
  for (const [mediaType, node] of Object.entries<Json>(owner.content ?? {})) {
    const at = [...path, 'content', mediaType]
    bodies.push({ at: pointer(at), count: collectBeside(node, at) })
  }
}

function collectResponse(response: Json, path: string[]): void {
  if ('$ref' in response) return // collected where it is defined, under components
  collectContent(response, path)
  for (const [name, header] of Object.entries<Json>(response.headers ?? {})) {
    if (!('$ref' in header)) collectBeside(header, [...path, 'headers', name])
  }
}

function collectParameters(parameters: Json[] | undefined, path: string[]): void {
  for (const [i, parameter] of (parameters ?? []).entries()) {
    if (!('$ref' in parameter)) collectBeside(parameter, [...path, 'parameters', String(i)])
  }
}

const components = spec.components ?? {}
for (const [name, schema] of Object.entries(components.schemas ?? {}))
  collectSchema(schema, ['components', 'schemas', name])
for (const [name, parameter] of Object.entries<Json>(components.parameters ?? {}))
  collectBeside(parameter, ['components', 'parameters', name])
for (const [name, header] of Object.entries<Json>(components.headers ?? {}))
  collectBeside(header, ['components', 'headers', name])
for (const [name, body] of Object.entries<Json>(components.requestBodies ?? {}))
  collectContent(body, ['components', 'requestBodies', name])
for (const [name, response] of Object.entries<Json>(components.responses ?? {}))
  collectResponse(response, ['components', 'responses', name])

/** Every problem example an operation can answer with, and the status it is listed under. */
const problemExamples: Array<{ at: string; status: number; value: Json }> = []

for (const [template, item] of Object.entries<Json>(spec.paths)) {
  collectParameters(item.parameters, ['paths', template])
  for (const method of METHODS.filter((m) => item[m])) {
    const operation = item[method]
    const path = ['paths', template, method]
    collectParameters(operation.parameters, path)
    if (operation.requestBody && !('$ref' in operation.requestBody))
      collectContent(operation.requestBody, [...path, 'requestBody'])
    for (const [status, declared] of Object.entries<Json>(operation.responses ?? {})) {
      collectResponse(declared, [...path, 'responses', status])
      const [response, responsePath] = deref(declared, [...path, 'responses', status])
      const problem = response.content?.['application/problem+json']
      for (const [name, entry] of Object.entries<Json>(problem?.examples ?? {})) {
        const at = `${method.toUpperCase()} ${template} ${status}: ${pointer([...responsePath, 'content', 'application/problem+json', 'examples', name])}`
        problemExamples.push({ at, status: Number(status), value: deref(entry, [])[0].value })
      }
      if (problem && 'example' in problem)
        problemExamples.push({
          at: `${method.toUpperCase()} ${template} ${status}`,
          status: Number(status),
          value: problem.example
        })
    }
  }
}

t.test('every request and response body shows an example', async (t) => {
  t.ok(bodies.length >= 20, `found ${bodies.length} bodies`)
  for (const body of bodies) t.ok(body.count > 0, `${body.at} has an example`)
})

t.test('every example is valid against its schema', async (t) => {
  t.ok(examples.length >= 50, `found ${examples.length} examples`)
  for (const example of examples) {
    const validate = ajv.compile({ $ref: `openapi#${pointer(example.schema)}` })
    const errors = validate(example.value)
      ? []
      : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`)
    t.same(errors, [], `${example.at} fits ${pointer(example.schema)}`)
  }
})

t.test('every error example is the problem document the service sends for its status', async (t) => {
  t.ok(problemExamples.length >= 40, `found ${problemExamples.length} problem examples across the operations`)
  for (const { at, status, value } of problemExamples) {
    t.equal(value.status, status, `${at}: status`)
    t.equal(value.title, STATUS_CODES[status], `${at}: title is the status's reason phrase`)
    t.match(value.type, new RegExp(`^${PROBLEM_TYPE_PREFIX}[a-z-]+$`), `${at}: type`)
    t.type(value.detail, 'string', `${at}: detail`)
  }
})
