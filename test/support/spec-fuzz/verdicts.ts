/**
 * A finding is only as good as the request behind it: a "valid" body that breaks its schema, or an
 * "invalid" one that keeps to it, would blame the service for the generator's mistake. So every
 * body's claimed verdict is checked with Ajv (another implementation of JSON Schema 2020-12) against
 * the schema it was generated from, as the service reads the body (a form's JSON fields parsed).
 */
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { RequestBuilder, type FuzzRequest } from './cases.js'
import type { Operation } from './document.js'

export interface Disagreement {
  variant: string
  operation: string
  count: number
  example: { body?: string; decoded: unknown; errors: unknown }
}

export class Verdicts {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true })
  private readonly validators = new Map<object, ReturnType<Ajv2020['compile']>>()
  readonly disagreements = new Map<string, Disagreement>()
  checked = 0

  constructor() {
    addFormats.default(this.ajv)
  }

  check(operation: Operation, request: FuzzRequest): void {
    if (!request.bodyVerdict || request.body === undefined) return
    const media = operation.body?.media.find((type) => type.mediaType === request.headers['content-type'])
    if (!media) return
    let validate = this.validators.get(media.schema)
    if (!validate) {
      validate = this.ajv.compile(media.schema)
      this.validators.set(media.schema, validate)
    }
    this.checked++
    const decoded = RequestBuilder.decode(media, request.body)
    const valid = decoded !== undefined && validate(decoded)
    if (valid === (request.bodyVerdict === 'valid')) return
    const key = `${request.operation} ${request.variant}`
    const seen = this.disagreements.get(key)
    if (seen) seen.count++
    else
      this.disagreements.set(key, {
        variant: request.variant,
        operation: request.operation,
        count: 1,
        example: { body: request.body.slice(0, 2000), decoded, errors: validate.errors ?? 'the body does not decode' }
      })
  }
}
