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
export type Greeting = Schemas['Greeting']
export type Profile = Schemas['Profile']
/** An RFC 9457 problem document, as every error of the service is. */
export type Problem = Schemas['Problem']
