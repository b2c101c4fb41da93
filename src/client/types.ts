/**
 * The shapes the client sends and receives, all taken from the types generated from openapi.yaml,
 * so a change of the contract shows up here as a type error, not as a surprise at run time.
 */
import type { components } from '../../generated/openapi.js'

type Schemas = components['schemas']

export type AccountData = Schemas['AccountData']
export type SignUpRequest = Schemas['SignUpRequest']
export type Credentials = Schemas['Credentials']
export type UpdateUserRequest = Schemas['UpdateUserRequest']
export type User = Schemas['User']
export type Session = Schemas['Session']
/** One live session in the list of an account's sessions. */
export type ActiveSession = Schemas['ActiveSession']
export type ChangePasswordRequest = Schemas['ChangePasswordRequest']
/** An RFC 7396 merge patch of a user: only `data`; a key set to null is removed. */
export type UserPatch = Schemas['UserPatch']
/** One page of `GET /users`: follow `next` until it is null. */
export type UserPage = Schemas['UserPage']
/** One security event of an account (the audit trail). */
export type AuditEvent = Schemas['AuditEvent']
export type AuditAction = Schemas['AuditAction']
/** One page of events, newest first: follow `next` until it is null. */
export type EventPage = Schemas['EventPage']
export type Greeting = Schemas['Greeting']
export type Profile = Schemas['Profile']
/** An RFC 9457 problem document, as every error of the service is. */
export type Problem = Schemas['Problem']
