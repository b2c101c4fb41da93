/**
 * Safe retries of a sign-up (the IETF httpapi Idempotency-Key header). The first request with a
 * key takes it (a 'running' record) and runs the sign-up; a 201 is kept for 24 hours and replayed
 * to a retry with the same key and the same request, anything else frees the key so the retry runs
 * again. The same key with another request is a 422; a retry while the first still runs, a 409.
 *
 * The fingerprint leaves the password out (fingerprint.ts): before replaying, the retry's password
 * is checked with bcrypt against the account's hash, in its turn in the hash pool like a login's.
 * If the account is gone since, the replay tells nothing the requester did not send.
 * Without a key nothing here touches a store.
 */
import { accountDataProblem } from '../accounts/account-data.js'
import type { SignUp, Throttled } from '../accounts/accounts.js'
import type { UserRecord } from '../accounts/account.js'
import { ProblemError, problems } from '../errors/problem.js'
import type { HashContext } from '../passwords/hash-scheduler.js'
import { fingerprintOf, keyHashOf } from './fingerprint.js'
import type { IdempotencyStore, KeptResponse, KeptSignUp, Lease } from './idempotency-store.js'

/** What a replay's wrong password throws inside the throttle, so that it counts as a failed login. */
const WRONG_PASSWORD = problems.wrongPassword().type

export type { KeptResponse } from './idempotency-store.js'

/**
 * How long a running record holds its key when its process dies mid-request: longer than any
 * sign-up can take (a database read and write of at most 1 s each, the hash's wait in its queue,
 * HASH_QUEUE_TIMEOUT_MS, 5 s by default, and the hash itself). The plugin lengthens it when the
 * queue's deadline is longer. Outliving it costs nothing worse than a 409 for the name: a second
 * attempt cannot create a second account (usernames are unique).
 */
export const RUNNING_MS = 60_000
/** How long an answer is kept for replay, from the sign-up's completion. */
export const KEEP_MS = 24 * 60 * 60 * 1000

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

/** Where the created account's password hash is read from (UsersRepository). */
export interface AccountLookup {
  findByUsername(username: string): Promise<UserRecord | undefined>
}

/** The hash pool (PasswordHasher). */
export interface PasswordCheck {
  verify(password: string, hash: string, context: HashContext): Promise<boolean>
}

export interface IdempotencyOptions {
  /** The running record's lifetime (RUNNING_MS); tests shorten it. */
  runningMs?: number
  /** How long a 201 is kept (KEEP_MS). */
  keepMs?: number
  /**
   * The store failed after the sign-up had run (keeping its answer, or freeing the key): the
   * request keeps its own answer, the running record expires by itself.
   */
  onStoreError?(error: unknown, step: 'complete' | 'release'): void
}

export class IdempotentSignUps {
  private readonly runningMs: number
  private readonly keepMs: number

  constructor(
    private readonly store: IdempotencyStore,
    private readonly passwords: PasswordCheck,
    private readonly accounts: AccountLookup,
    private readonly options: IdempotencyOptions = {}
  ) {
    this.runningMs = options.runningMs ?? RUNNING_MS
    this.keepMs = options.keepMs ?? KEEP_MS
  }

  /**
   * Runs `create` once per key; without a key, every time. A replay checks the password under
   * `throttled` (the failed-login limit): a retry is a way to test a password too.
   */
  async run(
    key: string | undefined,
    signUp: SignUp,
    caller: HashContext,
    throttled: Throttled,
    create: () => Promise<SignUpOutcome>
  ): Promise<IdempotentAnswer> {
    // Data the sign-up will refuse is not fingerprinted (it may be nested too deep to walk): its 400 takes no key.
    if (key === undefined || accountDataProblem(signUp.data ?? {}))
      return { response: (await create()).response, replayed: false }
    const fingerprint = fingerprintOf(key, signUp)
    const begun = await this.store.begin(keyHashOf(key), fingerprint, this.runningMs)
    if (begun.state === 'started') return this.first(begun.lease, create)
    if (begun.fingerprint !== fingerprint) throw problems.idempotencyKeyReused()
    if (begun.state === 'running') throw problems.idempotencyKeyInUse()
    return this.replay(begun.kept, signUp, caller, throttled)
  }

  private async first(lease: Lease, create: () => Promise<SignUpOutcome>): Promise<IdempotentAnswer> {
    let outcome: SignUpOutcome
    try {
      outcome = await create()
    } catch (error) {
      // Only a 201 is kept: a refused sign-up frees the key, so a corrected retry runs again.
      await this.store.release(lease).catch((storeError: unknown) => this.options.onStoreError?.(storeError, 'release'))
      throw error
    }
    const kept: KeptSignUp = { accountId: outcome.accountId, response: outcome.response }
    try {
      // False: the running record expired and another request took the key meanwhile.
      if (!(await this.store.complete(lease, kept, this.keepMs)))
        this.options.onStoreError?.(new Error('the running record had expired: the answer was not kept'), 'complete')
    } catch (error) {
      // The account exists: answering 201 is right, and a retry after the lease gets a 409 at worst.
      this.options.onStoreError?.(error, 'complete')
    }
    return { response: outcome.response, replayed: false }
  }

  /** The same key and the same request: replay, once the password is shown to be the same one. */
  private async replay(
    kept: KeptSignUp,
    signUp: SignUp,
    caller: HashContext,
    throttled: Throttled
  ): Promise<IdempotentAnswer> {
    const account = await this.accounts.findByUsername(signUp.username)
    // Gone (or deleted and the name taken again by another account): there is no hash to hold it to.
    if (account?.id === kept.accountId) {
      try {
        // A wrong password counts as a failed login for this username and address.
        await throttled(async () => {
          if (!(await this.passwords.verify(signUp.password, account.passwordHash, caller)))
            throw problems.wrongPassword()
        })
      } catch (error) {
        if (error instanceof ProblemError && error.type === WRONG_PASSWORD) throw problems.idempotencyKeyReused()
        throw error
      }
    }
    return { response: kept.response, replayed: true }
  }
}
