/**
 * Safe retries of a sign-up (the IETF httpapi Idempotency-Key header).
 * SKELETON: issue 14's idempotency work fills this in.
 */
import type { SignUp } from '../accounts/accounts.js'
import type { HashContext } from '../passwords/hash-scheduler.js'

/** An answer exactly as it is sent, so that it can be kept and replayed. */
export interface KeptResponse {
  status: number
  headers: Record<string, string>
  body: unknown
}

export interface SignUpOutcome {
  response: KeptResponse
  /** The account the sign-up created. */
  accountId: string
}

export interface IdempotentAnswer {
  response: KeptResponse
  /** True when this is the kept answer of an earlier request with the same key. */
  replayed: boolean
}

export class IdempotentSignUps {
  /** Runs `create` once per key; without a key, every time. */
  async run(
    _key: string | undefined,
    _signUp: SignUp,
    _caller: HashContext,
    create: () => Promise<SignUpOutcome>
  ): Promise<IdempotentAnswer> {
    return { response: (await create()).response, replayed: false }
  }
}
