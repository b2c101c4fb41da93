/**
 * Turns one operation of openapi.yaml into concrete requests, from the document alone: values valid
 * per schema come from json-schema-faker (a third-party generator, seeded), and the invalid variants
 * are derived from the same schemas by rule (a required property dropped, a wrong type, a string
 * past maxLength or short of minLength, an extra property where additionalProperties is false, a
 * number out of range, a missing required body), with strings of astral characters at and past
 * the length limits, since a schema's lengths count characters, not bytes or UTF-16 units. Where a
 * schema leaves an object free-form (`additionalProperties: true` and nothing else), fast-check's
 * JSON arbitrary fills it, as json-schema-faker leaves such objects all but empty. The document's
 * own examples are sent too. Knowing nothing of the service is the point: it checks the contract as
 * any client reading it would, where test/fuzz/ checks a hand-written model of the service.
 */
import fc from 'fast-check'
import { createGeneratorSync } from 'json-schema-faker'
import type { BodyMedia, Operation, Parameter, Schema } from './document.js'

export interface FuzzRequest {
  operation: string
  method: string
  template: string
  /** The request target: path and query string, encoded. */
  path: string
  headers: Record<string, string>
  body?: string
  /** What this request is: `valid`, or the rule that makes it invalid. */
  variant: string
  /** True when the document says this request is wrong, so no 2xx/3xx may answer it. */
  invalid: boolean
  /** For a method the path does not declare: the methods it does, which a 405's `Allow` must list. */
  allow?: string[]
  /** Whether the body, as the service reads it, is valid per its media type's schema: the generator's claim. */
  bodyVerdict?: 'valid' | 'invalid'
}

/** A small seeded PRNG (mulberry32) for the choices json-schema-faker does not make. */
export class Choices {
  private state: number
  constructor(seed: number) {
    this.state = seed >>> 0
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  chance(probability: number): boolean {
    return this.next() < probability
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!
  }
}

/** Where path parameters may name things that exist (usernames of real accounts, session ids). */
export type Known = Record<string, string[]>

const FORM = 'application/x-www-form-urlencoded'
const JSON_MEDIA_TYPE = 'application/json'
const MERGE_PATCH = 'application/merge-patch+json'

/** Any JSON object: keys and strings of any Unicode graphemes, nested a little. */
const FREE_FORM = fc.dictionary(
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.jsonValue({ maxDepth: 3, stringUnit: 'grapheme' }),
  { maxKeys: 6 }
)

/** An astral-plane character: one character of a schema's length, two UTF-16 units, four bytes. */
const ASTRAL = '\u{1F600}'

const typesOf = (schema: Schema): string[] =>
  schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type]

/** A value of a JSON type the schema does not allow, or undefined when it allows them all. */
function wrongTypeValue(schema: Schema): unknown {
  const allowed = typesOf(schema)
  if (allowed.length === 0) return undefined
  const candidates: [string, unknown][] = [
    ['integer', 12345],
    ['boolean', true],
    ['array', ['spec-fuzz']],
    ['object', { spec: 'fuzz' }],
    ['string', 'spec-fuzz'],
    ['null', null]
  ]
  const allows = (type: string) => allowed.includes(type) || (type === 'integer' && allowed.includes('number'))
  return candidates.find(([type]) => !allows(type))?.[1]
}

/** Header values are HTTP field values: keep json-schema-faker's text to what one may carry. */
const headerSafe = (value: string) => value.replace(/[^\x20-\x7e]/g, 'x')

const asText = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value))

export class RequestBuilder {
  private readonly faker: ReturnType<typeof createGeneratorSync>
  readonly choices: Choices

  constructor(seed: number) {
    // Arrays and nested objects stay small: the point is the shape, not the size.
    this.faker = createGeneratorSync({ seed, maxDepth: 3, maxDefaultItems: 3, optionalsProbability: 0.6 })
    this.choices = new Choices(seed ^ 0x5bd1e995)
  }

  /** A value valid per `schema`, from json-schema-faker. */
  fake(schema: Schema): unknown {
    return this.enrich(schema, this.faker.generate(schema))
  }

  /** Fills free-form objects (any properties allowed, none named) with arbitrary JSON. */
  private enrich(schema: Schema, value: unknown): unknown {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value
    const object = value as Record<string, unknown>
    const freeForm = schema.additionalProperties === true && !schema.properties && !schema.patternProperties
    if (freeForm && this.choices.chance(0.7)) {
      const seed = Math.floor(this.choices.next() * 2 ** 31)
      return fc.sample(FREE_FORM, { seed, numRuns: 1 })[0]
    }
    for (const [name, property] of Object.entries<Schema>(schema.properties ?? {})) {
      if (name in object) object[name] = this.enrich(property, object[name])
    }
    return object
  }

  /** Values for the parameters of one location, generated as one object so `required` holds. */
  private parameterValues(parameters: Parameter[], known: Known): Record<string, string> {
    const values: Record<string, string> = {}
    if (parameters.length === 0) return values
    const schema = {
      type: 'object',
      additionalProperties: false,
      required: parameters.filter((p) => p.required).map((p) => p.name),
      properties: Object.fromEntries(parameters.map((p) => [p.name, p.schema]))
    }
    const generated = this.fake(schema) as Record<string, unknown>
    for (const parameter of parameters) {
      const existing = known[parameter.name] ?? []
      if (parameter.in === 'path' && existing.length > 0 && this.choices.chance(0.75)) {
        values[parameter.name] = this.choices.pick(existing)
      } else if (parameter.examples.length > 0 && this.choices.chance(0.15)) {
        // The document's own examples, now and then, as a reader of it would try them.
        values[parameter.name] = asText(this.choices.pick(parameter.examples))
      } else if (generated[parameter.name] !== undefined) {
        values[parameter.name] = asText(generated[parameter.name])
      }
    }
    return values
  }

  /** A body valid per the media type's schema, serialised as that media type says. */
  private validBody(media: BodyMedia): unknown {
    return this.fake(media.schema)
  }

  /**
   * A serialised body as the service reads it: JSON parsed; a form's fields as strings (arrays
   * when repeated), those its `encoding` names JSON parsed from their text. Undefined when that
   * text is no JSON, which is as invalid as a body gets.
   */
  static decode(media: BodyMedia, text: string): unknown {
    try {
      if (media.mediaType !== FORM) return JSON.parse(text)
      const form = new URLSearchParams(text)
      const value: Record<string, unknown> = {}
      for (const field of new Set(form.keys())) {
        const all = form.getAll(field)
        const encoded = media.encoding[field]
        if (encoded !== undefined && /json/.test(encoded)) value[field] = JSON.parse(all[0]!)
        else value[field] = all.length > 1 ? all : all[0]
      }
      return value
    } catch {
      return undefined
    }
  }

  /** Serialises a body value for its media type, honouring the form's `encoding`. */
  static serialise(media: BodyMedia, value: unknown): string {
    if (media.mediaType !== FORM) return JSON.stringify(value)
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      // A form is a set of fields; a body that is not an object becomes one unnamed field.
      return new URLSearchParams({ value: asText(value) }).toString()
    }
    const form = new URLSearchParams()
    for (const [field, fieldValue] of Object.entries(value)) {
      const encoded = media.encoding[field]
      if (encoded !== undefined && /json/.test(encoded)) form.append(field, JSON.stringify(fieldValue))
      else if (Array.isArray(fieldValue)) for (const item of fieldValue) form.append(field, asText(item))
      else form.append(field, asText(fieldValue))
    }
    return form.toString()
  }

  private request(
    operation: Operation,
    variant: string,
    invalid: boolean,
    pathValues: Record<string, string>,
    query: Record<string, string>,
    headers: Record<string, string>,
    body?: { mediaType: string; text: string },
    bodyVerdict?: 'valid' | 'invalid'
  ): FuzzRequest {
    let path = operation.template.replace(/\{([^}]+)\}/g, (_, name: string) =>
      encodeURIComponent(pathValues[name] ?? '')
    )
    const search = new URLSearchParams(query).toString()
    if (search) path += `?${search}`
    const sent: Record<string, string> = {}
    for (const [name, value] of Object.entries(headers)) sent[name.toLowerCase()] = headerSafe(value)
    if (body) sent['content-type'] = body.mediaType
    return {
      operation: operation.id,
      method: operation.method,
      template: operation.template,
      path,
      headers: sent,
      ...(body && { body: body.text }),
      variant,
      invalid,
      ...(bodyVerdict && { bodyVerdict })
    }
  }

  /**
   * One round of requests for `operation`: `valid` valid ones per media type (or `valid` in all
   * without a body), then each invalid variant the schemas give rise to, once.
   */
  build(operation: Operation, known: Known, valid: number): FuzzRequest[] {
    const byLocation = (where: Parameter['in']) => operation.parameters.filter((p) => p.in === where)
    const base = () => ({
      path: this.parameterValues(byLocation('path'), known),
      query: this.parameterValues(byLocation('query'), known),
      headers: this.parameterValues(byLocation('header'), known)
    })
    const requests: FuzzRequest[] = []
    const media = operation.body?.media ?? []

    // Valid requests.
    for (let i = 0; i < valid; i++) {
      const { path, query, headers } = base()
      if (media.length === 0) {
        requests.push(this.request(operation, 'valid', false, path, query, headers))
        continue
      }
      for (const type of media) {
        const text = RequestBuilder.serialise(type, this.validBody(type))
        requests.push(
          this.request(operation, `valid ${type.mediaType}`, false, path, query, headers, { ...type, text }, 'valid')
        )
      }
    }

    // The document's own example bodies, each once: they tell a story (ben signs up, then logs in).
    for (const type of media) {
      for (const example of type.examples) {
        const { path, query, headers } = base()
        const text = RequestBuilder.serialise(type, example)
        requests.push(
          this.request(operation, `example ${type.mediaType}`, false, path, query, headers, { ...type, text }, 'valid')
        )
      }
    }

    // Strings at their length limits in astral characters: valid, however many bytes they take.
    for (const type of media) {
      for (const [rule, text] of this.boundaryBodies(type)) {
        const { path, query, headers } = base()
        requests.push(
          this.request(
            operation,
            `valid ${type.mediaType} ${rule}`,
            false,
            path,
            query,
            headers,
            { mediaType: type.mediaType, text },
            'valid'
          )
        )
      }
    }

    // Parameters off their schemas.
    for (const parameter of operation.parameters) {
      if (parameter.in === 'cookie') continue
      for (const [rule, value] of this.invalidParameterValues(parameter)) {
        const { path, query, headers } = base()
        const at = parameter.in === 'path' ? path : parameter.in === 'query' ? query : headers
        at[parameter.name] = value
        const type = media[0]
        const body = type && { mediaType: type.mediaType, text: RequestBuilder.serialise(type, this.validBody(type)) }
        requests.push(
          this.request(
            operation,
            `${parameter.in} ${parameter.name}: ${rule}`,
            true,
            path,
            query,
            headers,
            body,
            body && 'valid'
          )
        )
      }
    }

    // Bodies off their schemas, for each media type.
    for (const type of media) {
      for (const [rule, text] of this.invalidBodies(type)) {
        const { path, query, headers } = base()
        requests.push(
          this.request(
            operation,
            `${type.mediaType} ${rule}`,
            true,
            path,
            query,
            headers,
            { mediaType: type.mediaType, text },
            'invalid'
          )
        )
      }
    }
    // A body of a media type the operation does not declare.
    const first = media[0]
    if (first) {
      for (const mediaType of [JSON_MEDIA_TYPE, MERGE_PATCH, FORM, 'text/plain']) {
        if (media.some((type) => type.mediaType === mediaType)) continue
        const value = this.validBody(first)
        const text =
          mediaType === FORM ? RequestBuilder.serialise({ ...first, mediaType }, value) : JSON.stringify(value)
        const { path, query, headers } = base()
        requests.push(
          this.request(operation, `media type ${mediaType} not declared`, true, path, query, headers, {
            mediaType,
            text
          })
        )
      }
    }
    if (operation.body?.required) {
      const { path, query, headers } = base()
      requests.push(this.request(operation, 'required body missing', true, path, query, headers))
    }
    return requests
  }

  /**
   * For a path of the document, a request with each method the document does not declare there
   * (HEAD and OPTIONS included): its path parameters valid, no body. Nothing declares such a
   * request, so it must be refused.
   */
  undeclared(operations: Operation[], known: Known): FuzzRequest[] {
    const declared = new Set(operations.map((operation) => operation.method))
    const template = operations[0]!
    const requests: FuzzRequest[] = []
    for (const method of ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']) {
      if (declared.has(method)) continue
      const path = this.parameterValues(
        template.parameters.filter((p) => p.in === 'path'),
        known
      )
      const request = this.request(template, `method ${method} not in openapi.yaml`, true, path, {}, {})
      requests.push({
        ...request,
        method,
        operation: `${method} ${template.template} (undeclared)`,
        allow: [...declared].sort()
      })
    }
    return requests
  }

  /** Values of a parameter that break its schema, each with the rule it breaks. */
  private invalidParameterValues(parameter: Parameter): [string, string][] {
    const schema = parameter.schema
    const out: [string, string][] = []
    const types = typesOf(schema)
    if (typeof schema.maxLength === 'number') {
      out.push(['past maxLength', 'a'.repeat(schema.maxLength + 1)])
      // Far past it too: for a path, long enough for the document's 414.
      out.push(['far past maxLength', 'a'.repeat(schema.maxLength * 4)])
    }
    // An empty header may read as no header at all, so only a query gets the empty string.
    const shortest = parameter.in === 'header' ? 2 : 1
    if (typeof schema.minLength === 'number' && schema.minLength >= shortest)
      out.push(['short of minLength', 'a'.repeat(schema.minLength - 1)])
    if (types.includes('integer') || types.includes('number')) {
      out.push(['wrong type', 'spec-fuzz'])
      if (typeof schema.maximum === 'number') out.push(['above maximum', String(schema.maximum + 1)])
      if (typeof schema.minimum === 'number') out.push(['below minimum', String(schema.minimum - 1)])
    }
    if (types.includes('integer')) out.push(['not an integer', '1.5'])
    if (typeof schema.pattern === 'string') {
      const pattern = new RegExp(schema.pattern, 'u')
      const breaking = ['spec fuzz!', '..', '%', 'a'.repeat(300)].find((candidate) => !pattern.test(candidate))
      if (breaking !== undefined) out.push(['breaks pattern', breaking])
    }
    // Path parameters are required: an empty segment is a value that no schema with minLength allows.
    if (parameter.in === 'path' && (schema.minLength ?? 0) > 0) out.push(['empty', ''])
    return out
  }

  /** Valid bodies with a free-text property at exactly its minLength or maxLength, in astral characters. */
  private boundaryBodies(media: BodyMedia): [string, string][] {
    const out: [string, string][] = []
    for (const [name, property] of Object.entries<Schema>(media.schema.properties ?? {})) {
      if (!typesOf(property).includes('string') || property.pattern !== undefined) continue
      for (const [limit, length] of [
        ['maxLength', property.maxLength],
        ['minLength', property.minLength]
      ] as const) {
        if (typeof length !== 'number' || length < 1) continue
        const value = this.validBody(media) as Record<string, unknown>
        out.push([
          `property ${name} at ${limit} in astral characters`,
          RequestBuilder.serialise(media, { ...value, [name]: ASTRAL.repeat(length) })
        ])
      }
    }
    return out
  }

  /** Bodies of a media type that break its schema, serialised, each with the rule it breaks. */
  private invalidBodies(media: BodyMedia): [string, string][] {
    const schema = media.schema
    const out: [string, string][] = []
    const valid = () => {
      const value = this.validBody(media)
      return value !== null && typeof value === 'object' && !Array.isArray(value)
        ? (value as Record<string, unknown>)
        : {}
    }
    const serialise = (value: unknown) => RequestBuilder.serialise(media, value)
    const properties: Record<string, Schema> = schema.properties ?? {}
    const isForm = media.mediaType === FORM

    // A form has no types but text, so only a JSON body can be of the wrong type as a whole.
    if (typesOf(schema).includes('object') && !isForm) {
      out.push(['body of the wrong type (an array)', JSON.stringify([valid()])])
    }
    for (const name of schema.required ?? []) {
      const body = valid()
      delete body[name]
      out.push([`required property ${name} dropped`, serialise(body)])
    }
    for (const [name, property] of Object.entries(properties)) {
      const wrong = wrongTypeValue(property)
      if (wrong !== undefined) {
        const body = { ...valid(), [name]: wrong }
        // In a form, text is every field's type: a wrong type is a field sent twice (an array),
        // or, for a field encoded as JSON, JSON text of a value of the wrong type.
        if (isForm && !(media.encoding[name] && /json/.test(media.encoding[name]!))) body[name] = ['spec', 'fuzz']
        out.push([`property ${name} of the wrong type`, serialise(body)])
      }
      if (isForm && media.encoding[name] && /json/.test(media.encoding[name]!)) {
        const form = new URLSearchParams(serialise(valid()))
        form.set(name, '{"spec": fuzz')
        out.push([`property ${name} not the ${media.encoding[name]} its encoding names`, form.toString()])
      }
      if (typeof property.maxLength === 'number' && typesOf(property).includes('string')) {
        out.push([
          `property ${name} past maxLength`,
          serialise({ ...valid(), [name]: 'a'.repeat(property.maxLength + 1) })
        ])
      }
      if (typeof property.minLength === 'number' && property.minLength > 0 && typesOf(property).includes('string')) {
        out.push([
          `property ${name} short of minLength`,
          serialise({ ...valid(), [name]: 'a'.repeat(property.minLength - 1) })
        ])
      }
      if (typesOf(property).includes('string') && property.pattern === undefined) {
        if (typeof property.maxLength === 'number') {
          out.push([
            `property ${name} past maxLength in astral characters`,
            serialise({ ...valid(), [name]: ASTRAL.repeat(property.maxLength + 1) })
          ])
        }
        if (typeof property.minLength === 'number' && property.minLength > 1) {
          out.push([
            `property ${name} short of minLength in astral characters`,
            serialise({ ...valid(), [name]: ASTRAL.repeat(property.minLength - 1) })
          ])
        }
      }
    }
    if (schema.additionalProperties === false) {
      out.push(['extra property where additionalProperties is false', serialise({ ...valid(), specFuzzExtra: 'x' })])
    }
    return out
  }
}
