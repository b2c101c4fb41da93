/**
 * A form field is text. Where the contract's form media type says, in its `encoding`, that a field
 * is `application/json` (sign-up's `data`), that field's text is parsed as JSON before the body is
 * validated. JSON and form bodies then share one schema, which every OpenAPI tool reads alike.
 */
import { specDocument } from '../../generated/contract.js'

export const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded'

interface MediaType {
  encoding?: Record<string, { contentType?: string }>
}
type Operation = { operationId?: string; requestBody?: { content?: Record<string, MediaType> } }

const jsonFieldsByOperation = new Map<string, string[]>()
for (const item of Object.values(specDocument.paths as Record<string, Record<string, Operation>>)) {
  for (const operation of Object.values(item)) {
    const encoding = operation?.requestBody?.content?.[FORM_MEDIA_TYPE]?.encoding ?? {}
    const fields = Object.keys(encoding).filter((field) => encoding[field]?.contentType === 'application/json')
    if (operation.operationId && fields.length > 0) jsonFieldsByOperation.set(operation.operationId, fields)
  }
}

/** The form fields of the operation that carry JSON text. */
export function jsonFormFields(operationId: string | undefined): string[] {
  return (operationId && jsonFieldsByOperation.get(operationId)) || []
}
