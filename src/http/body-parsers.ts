/**
 * Request bodies: JSON (and JSON merge patches) and URL-encoded forms, and only where the contract
 * declares a body.
 * - Anything else is a 415 on operations that take a body, not a string the schema then refuses.
 * - Operations without a body (GET, DELETE) ignore whatever body a client sends, as a browser-era
 *   service would, so a stray `Content-Type` or payload never turns a DELETE into a 400.
 * - A form field the contract encodes as JSON (`encoding`, see form-encoding.ts) is parsed as JSON.
 * - An empty JSON body counts as no body: clients that always send `Content-Type: application/json`
 *   (curl scripts, some SDKs) still work, and an operation that needs a body then says so.
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyRequest, preValidationHookHandler } from 'fastify'
import { problems } from '../errors/problem.js'
import { FORM_MEDIA_TYPE, jsonFormFields } from './form-encoding.js'

const PROTOTYPE_KEYS_RULE = 'must not use the keys "__proto__" or "constructor.prototype"'

/** The media types the operation's requestBody lists, or undefined when it takes no body. */
function declaredMediaTypes(request: FastifyRequest): Record<string, unknown> | undefined {
  return (request.routeOptions.schema?.body as { content?: Record<string, unknown> } | undefined)?.content
}

function mediaTypeOf(request: FastifyRequest): string {
  return (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
}

/** True when the text is valid JSON, i.e. the secure parser refused it for its prototype keys. */
function isPlainJson(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

/** JSON text read by Fastify's secure parser; a refusal says whether it was for prototype keys. */
type JsonRead = { value: unknown } | { error: Error; prototypeKeys: boolean }
type JsonReader = (request: FastifyRequest, text: string) => JsonRead

/** Fastify's secure JSON parser, which answers synchronously, as a function that returns. */
function jsonReader(app: FastifyInstance): JsonReader {
  const parseJson = app.getDefaultJsonParser('error', 'error')
  return (request, text) => {
    let read: JsonRead | undefined
    parseJson(request, text, (error, value) => {
      read = error ? { error, prototypeKeys: isPlainJson(text) } : { value }
    })
    return read!
  }
}

/**
 * A form field the contract encodes as JSON (sign-up's `data`) holds JSON text: it is read with the
 * same secure parser as a JSON body, so the schema then checks the value, not a string. An empty
 * field (an HTML form's blank textarea) counts as not sent.
 */
function readJsonFields(readJson: JsonReader, request: FastifyRequest, fields: string[]) {
  const form = request.body as Record<string, unknown>
  for (const field of fields) {
    const text = form[field]
    if (typeof text !== 'string') continue
    if (text.trim() === '') {
      delete form[field]
      continue
    }
    const read = readJson(request, text)
    if ('value' in read) {
      form[field] = read.value
      continue
    }
    const message = read.prototypeKeys
      ? PROTOTYPE_KEYS_RULE
      : `must be JSON text (the form's ${field} field is application/json)`
    return problems.validation(`body/${field} ${message}`, [{ field: `/${field}`, message }])
  }
  return undefined
}

/** Outside the API (docs, unknown paths) no route takes a body: ignore any that is sent. */
export function ignoreBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined))
}

export async function registerBodyParsers(app: FastifyInstance): Promise<void> {
  app.removeAllContentTypeParsers()

  const readJson = jsonReader(app)
  // A merge patch (RFC 7396, PATCH) is JSON too, under its own media type.
  app.addContentTypeParser(
    ['application/json', 'application/merge-patch+json'],
    { parseAs: 'string' },
    (request, body, done) => {
      const text = body as string
      if (!declaredMediaTypes(request) || text.trim() === '') return done(null, undefined)
      const read = readJson(request, text)
      if ('value' in read) return done(null, read.value)
      done(read.prototypeKeys ? problems.validation(`body ${PROTOTYPE_KEYS_RULE}`) : read.error, undefined)
    }
  )

  await app.register(formbody)

  // Any other media type: refused where a body is expected, ignored where none is.
  const refuseOrIgnore = (
    request: FastifyRequest,
    _body: Buffer,
    done: (error: Error | null, body?: unknown) => void
  ) => {
    const declared = declaredMediaTypes(request)
    if (declared) return done(problems.unsupportedMediaType(mediaTypeOf(request), Object.keys(declared)), undefined)
    done(null, undefined)
  }
  app.addContentTypeParser('*', { parseAs: 'buffer' }, refuseOrIgnore)
  // The glue warns at start-up about every media type in the contract without a parser, responses'
  // included: problem+json gets the catch-all's behaviour under its own name.
  app.addContentTypeParser('application/problem+json', { parseAs: 'buffer' }, refuseOrIgnore)

  // Fastify parses every registered type on every route but validates a body only against the
  // schema of its own media type: a form sent where only JSON is declared would go unchecked.
  // Without a Content-Type Fastify validates nothing at all: a missing body must be refused here.
  // Only operations that take a body get the check, so reads pay nothing for it.
  app.addHook('onRoute', (route) => {
    const declared = (route.schema?.body as { content?: Record<string, unknown> } | undefined)?.content
    if (!declared) return
    const accepted = Object.keys(declared)
    const jsonFields = jsonFormFields((route.schema as { operationId?: string } | undefined)?.operationId)
    const requireDeclaredBody: preValidationHookHandler = (request, _reply, done) => {
      if (request.body === undefined) {
        return done(
          problems.validation(`body is required: this operation takes ${accepted.join(' or ')}`, [
            { field: '/', message: 'is required' }
          ])
        )
      }
      const mediaType = mediaTypeOf(request)
      if (!(mediaType in declared)) return done(problems.unsupportedMediaType(mediaType, accepted))
      if (mediaType === FORM_MEDIA_TYPE && jsonFields.length > 0) {
        return done(readJsonFields(readJson, request, jsonFields))
      }
      done()
    }
    route.preValidation = [requireDeclaredBody, ...[route.preValidation ?? []].flat()]
  })
}
