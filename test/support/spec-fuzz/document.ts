/**
 * The spec fuzz builds every request from openapi.yaml alone, so this reads the document the way a
 * third-party tool would: every operation with its parameters (path-level ones included), its
 * request body's media types with their schemas and `encoding`, and every local `$ref` inlined so
 * json-schema-faker gets self-contained schemas. It reads the YAML itself (as test/contract.ts
 * does) so that the requests and the checker of the answers always come from the same text.
 */
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'

type Json = Record<string, any>

export type Schema = Json

export interface Parameter {
  name: string
  in: 'path' | 'query' | 'header' | 'cookie'
  required: boolean
  schema: Schema
  /** The parameter's `example`/`examples` and its schema's `examples`. */
  examples: unknown[]
}

export interface BodyMedia {
  mediaType: string
  schema: Schema
  /** Per property, the media type its value is encoded as (a form's JSON-text field). */
  encoding: Record<string, string>
  /** The media type's example values. */
  examples: unknown[]
}

export interface Operation {
  id: string
  method: string
  template: string
  parameters: Parameter[]
  body?: { required: boolean; media: BodyMedia[] }
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace']

export const SPEC_URL = new URL('../../../openapi.yaml', import.meta.url)

/** Follows a local reference such as `#/components/schemas/User`. */
function target(document: Json, ref: string): Json {
  if (!ref.startsWith('#/')) throw new Error(`spec fuzz: only local $refs are supported, not ${ref}`)
  return ref
    .slice(2)
    .split('/')
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((at: Json, key) => {
      if (at?.[key] === undefined) throw new Error(`spec fuzz: ${ref} names nothing in openapi.yaml`)
      return at[key]
    }, document)
}

/** A copy of `node` with every local `$ref` replaced by what it names (siblings of the `$ref` win). */
export function inline(document: Json, node: unknown, seen: string[] = []): any {
  if (Array.isArray(node)) return node.map((item) => inline(document, item, seen))
  if (node === null || typeof node !== 'object') return node
  const object = node as Json
  let base: Json = {}
  let rest = object
  if (typeof object.$ref === 'string') {
    if (seen.includes(object.$ref)) throw new Error(`spec fuzz: ${object.$ref} refers to itself`)
    base = inline(document, target(document, object.$ref), [...seen, object.$ref])
    const { $ref: _ref, ...siblings } = object
    rest = siblings
  }
  const copy: Json = { ...base }
  for (const [key, value] of Object.entries(rest)) {
    // Examples are data, not schemas: they are kept as written.
    copy[key] = key === 'example' || key === 'examples' ? value : inline(document, value, seen)
  }
  return copy
}

/** The values of an `example` and an `examples` map (of Example Objects) or list beside it. */
function examplesOf(node: Json): unknown[] {
  const values: unknown[] = []
  if (node.example !== undefined) values.push(node.example)
  if (Array.isArray(node.examples)) values.push(...node.examples)
  else if (node.examples && typeof node.examples === 'object') {
    for (const example of Object.values<Json>(node.examples)) if ('value' in example) values.push(example.value)
  }
  return values
}

export function readDocument(): Json {
  return parse(readFileSync(SPEC_URL, 'utf8'))
}

/** Every operation of the document, in document order. */
export function operationsOf(document: Json): Operation[] {
  const operations: Operation[] = []
  for (const [template, rawItem] of Object.entries<Json>(document.paths ?? {})) {
    const item = inline(document, rawItem)
    for (const method of METHODS) {
      const operation: Json | undefined = item[method]
      if (!operation) continue
      const byKey = new Map<string, Json>()
      for (const parameter of [...(item.parameters ?? []), ...(operation.parameters ?? [])]) {
        byKey.set(`${parameter.in}:${parameter.name}`, parameter)
      }
      const parameters = [...byKey.values()].map((parameter) => ({
        name: parameter.name,
        in: parameter.in,
        required: parameter.in === 'path' || parameter.required === true,
        schema: parameter.schema ?? {},
        examples: [...examplesOf(parameter), ...(parameter.schema ? examplesOf(parameter.schema) : [])]
      }))
      const body = operation.requestBody
        ? {
            required: operation.requestBody.required === true,
            media: Object.entries<Json>(operation.requestBody.content ?? {}).map(([mediaType, content]) => ({
              mediaType,
              schema: content.schema ?? {},
              examples: examplesOf(content),
              encoding: Object.fromEntries(
                Object.entries<Json>(content.encoding ?? {})
                  .filter(([, encoding]) => typeof encoding.contentType === 'string')
                  .map(([property, encoding]) => [property, encoding.contentType as string])
              )
            }))
          }
        : undefined
      operations.push({
        id: operation.operationId ?? `${method.toUpperCase()} ${template}`,
        method: method.toUpperCase(),
        template,
        parameters,
        ...(body && { body })
      })
    }
  }
  return operations
}
