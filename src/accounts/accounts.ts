/**
 * The account use cases: sign up, log in and out, read, update or delete an account, see and end
 * its sessions, and change its password.
 */
import { randomUUID } from 'node:crypto'
import { isUniqueViolation } from '../db/errors.js'
import { type Account, accountFields, usernameKey } from './account.js'
import type { UsersRepository } from '../db/users-repository.js'
import { problems } from '../errors/problem.js'
import type { HashContext } from '../passwords/hash-scheduler.js'
import { costOf, type PasswordHasher } from '../passwords/password-hasher.js'
import { loginPasswordProblem, passwordProblem } from '../passwords/password-policy.js'
import type { AccountCache, AccountToChange, BegunChange } from '../sessions/session-store.js'
import type { ListedSession, SessionClient, Sessions, StartedSession } from '../sessions/sessions.js'
import { accessTo, liftingSuspensionBy, suspensionBy } from './access-policy.js'
import { accountDataProblem, MAX_DATA_DEPTH, nestedTooDeep } from './account-data.js'
import { allowedVersions, entityTag, type Precondition } from './entity-tags.js'
import { mergePatch, sameJson } from './merge-patch.js'

export type AccountData = Record<string, unknown>

export interface SignUp {
  username: string
  password: string
  data?: AccountData
}

function dataProblem(message: string) {
  return problems.validation(`body/data ${message}`, [{ field: '/data', message }])
}

function checkData(data: AccountData): void {
  const message = accountDataProblem(data)
  if (message) throw dataProblem(message)
}

/**
 * The whole account after a write of `data` over `target`, when the write tells it: the row the
 * database returned, or the snapshot with this data when the version moved by exactly this write.
 * Undefined when other changes came in between (MySQL cannot return the row it wrote) or nothing
 * matched.
 */
function knownAfterWrite(
  target: Account,
  written: { version: number; account?: Account } | undefined,
  data: AccountData,
  now: Date
): Account | undefined {
  if (written?.account) return written.account
  if (written?.version === target.version + 1)
    return { ...accountFields(target), data, updatedAt: now, version: written.version }
  return undefined
}

/** Throws the 412 when the precondition does not allow the account's current version. */
function checkPrecondition(precondition: Precondition | undefined, current: Account): void {
  const allowed = allowedVersions(precondition, current.id)
  if (allowed !== 'any' && !allowed.includes(current.version)) throw problems.preconditionFailed(entityTag(current))
}

function refusePassword(message: string, field = 'password') {
  return problems.validation(`body/${field} ${message}`, [{ field: `/${field}`, message }])
}

export interface PasswordChange {
  currentPassword?: string
  newPassword: string
}

/** Runs one check of a password the caller claims to know under the failed-login throttle. */
export type Throttled = <T>(check: () => Promise<T>) => Promise<T>

export class Accounts {
  constructor(
    private readonly users: UsersRepository,
    private readonly sessions: Sessions,
    private readonly passwords: PasswordHasher,
    /** Every change to a user's row goes through it (see session-store.ts). */
    private readonly cache: AccountCache,
    private readonly options: { showSuspensionReason: boolean } = { showSuspensionReason: false }
  ) {}

  /** `caller`: whose share of the hash pool the password's hash takes, and whether they still wait. */
  async signUp({ username, password, data = {} }: SignUp, caller: HashContext): Promise<Account> {
    const passwordIssue = passwordProblem(password)
    if (passwordIssue) throw refusePassword(passwordIssue)
    checkData(data)
    // Cheap check first, so a taken name does not cost a bcrypt hash; the unique index decides races.
    if (await this.users.findByUsername(username)) throw problems.usernameTaken(username)
    const passwordHash = await this.passwords.hash(password, caller)
    try {
      return await this.users.insert({ id: randomUUID(), username, passwordHash, data, now: new Date() })
    } catch (error) {
      if (isUniqueViolation(error)) throw problems.usernameTaken(username)
      throw error
    }
  }

  /** Same answer, and the same bcrypt work, for an unknown user and a wrong password. */
  async logIn(username: string, password: string, caller: HashContext, client: SessionClient): Promise<StartedSession> {
    const passwordIssue = loginPasswordProblem(password)
    if (passwordIssue) throw refusePassword(passwordIssue)
    const user = await this.users.findByUsername(username)
    const valid = user
      ? await this.passwords.verify(password, user.passwordHash, caller)
      : await this.passwords.verifyAgainstDummy(password, caller)
    if (!user || !valid) throw problems.invalidCredentials()
    // Only once the password is known to be right: a wrong one learns nothing of a suspension.
    if (user.suspended)
      throw problems.accountSuspended(this.options.showSuspensionReason ? user.suspended.reason : null)
    // Hashes made at another cost (an import, an older BCRYPT_COST) are brought up to date while
    // the password is at hand, so every login costs the same and old hashes do not linger. Only
    // if the hash is still the one just checked: a password change in between must win.
    let checkedHash = user.passwordHash
    if (costOf(user.passwordHash) !== this.passwords.cost) {
      const rehashed = await this.passwords.hash(password, caller)
      if (await this.users.replacePasswordHash(user.id, user.passwordHash, rehashed)) checkedHash = rehashed
    }
    const session = await this.sessions.start(user.id, client)
    // A password change (or a suspension, or a deletion) that committed while this login was
    // comparing ended every session but could not end this one, made after it: end it now.
    const now = await this.users.findByUsername(username)
    if (!now || now.id !== user.id || now.passwordHash !== checkedHash || now.suspended) {
      await this.sessions.end(session.token)
      throw problems.invalidCredentials()
    }
    return session
  }

  logOut(token: string): Promise<void> {
    return this.sessions.end(token)
  }

  /**
   * The account behind a bearer token, or undefined when the token is not live. A suspension ends
   * every session, but a login racing it could still make one: it leads nowhere either.
   */
  async authenticate(token: string): Promise<Account | undefined> {
    const account = await this.sessions.accountFor(token)
    return account?.suspended ? undefined : account
  }

  /**
   * authenticate, for a request that will change the caller's own account: the change may begin
   * with the lookup (SessionStore.findAccountToChange); the request passes it on to the write.
   */
  async authenticateToChange(token: string): Promise<AccountToChange | undefined> {
    const found = await this.sessions.accountToChange(token)
    if (!found?.account.suspended) return found
    found.change?.abandon()
    return undefined
  }

  read(actor: Account, username: string): Promise<Account> {
    return this.target(actor, username)
  }

  /**
   * Replaces the account's data; with a precondition (If-Match), only at a version it allows. One
   * conditional UPDATE in the common case (see UsersRepository.setData). `begun`: the change
   * authenticateToChange began, used when the target is the caller.
   */
  async replaceData(
    actor: Account,
    username: string,
    data: AccountData,
    precondition?: Precondition,
    begun?: BegunChange
  ): Promise<Account> {
    checkData(data)
    const target = await this.target(actor, username)
    const now = new Date()
    const versions = allowedVersions(precondition, target.id)
    const written = await this.writeData(target, username, data, now, versions, begun)
    if (written) return written
    throw await this.refusedWrite(target, username)
  }

  /**
   * Applies an RFC 7396 merge patch to the account's data. The result must pass the same limits as
   * a sign-up's data, and a patch that changes nothing writes nothing. Concurrent patches of
   * different keys all survive: the patch is written only over the version it was merged onto
   * (one UPDATE), and if the account moved meanwhile it is merged again onto the row as it is,
   * held by a transaction.
   */
  async patchData(
    actor: Account,
    username: string,
    patch: { data?: AccountData },
    precondition?: Precondition,
    begun?: BegunChange
  ): Promise<{ account: Account; changed: boolean }> {
    // The merge walks the patch recursively: one nested past the limit is refused before it is walked.
    if (nestedTooDeep(patch.data)) throw dataProblem(`must be at most ${MAX_DATA_DEPTH} levels deep`)
    const merge = (current: Account): AccountData | undefined => {
      checkPrecondition(precondition, current)
      if (patch.data === undefined) return undefined
      const data = mergePatch(current.data, patch.data) as AccountData
      checkData(data)
      return sameJson(data, current.data) ? undefined : data
    }
    const target = await this.target(actor, username)
    const data = merge(target)
    if (data === undefined) return { account: target, changed: false }
    const now = new Date()
    const written = await this.writeData(target, username, data, now, [target.version], begun)
    if (written) return { account: written, changed: true }
    // The account moved since the snapshot: merge again onto the row as it is, holding it.
    let changed = false
    const account = await this.cache.write(
      target.id,
      () =>
        this.users.changeData(
          target.id,
          (current) => {
            const merged = merge(current)
            changed = merged !== undefined
            return merged
          },
          now
        ),
      (account) => account
    )
    if (!account) throw problems.userNotFound(username)
    return { account, changed }
  }

  /**
   * Writes `data` over `target` while its row is at one of `versions`, and returns the account as
   * written, or undefined when no row matched (a 412 or a 404). The cache learns the row before the
   * change ends, so a read right after it is a hit: as the database returned it, else built from
   * the snapshot when nothing else changed in between, else (MySQL cannot return the row it wrote)
   * read back, which is one more query only when other changes came between.
   */
  private async writeData(
    target: Account,
    username: string,
    data: AccountData,
    now: Date,
    versions: number[] | 'any',
    begun: BegunChange | undefined
  ): Promise<Account | undefined> {
    let answer: Account | undefined
    await this.cache.write(
      target.id,
      async () => {
        const written = await this.users.setData(target.id, data, now, versions, target)
        if (!written) return undefined
        answer = knownAfterWrite(target, written, data, now)
        if (answer) return answer
        const current = await this.users.findAccountById(target.id)
        if (!current) throw problems.userNotFound(username)
        // The answer is what this request wrote, at its version, with the rest as it is now; the
        // cache gets the row as it is now, which is at least as new.
        answer = { ...current, data, updatedAt: now, version: written.version }
        return current
      },
      (row) => row,
      begun
    )
    return answer
  }

  /** Why a conditional write matched no row: the account is gone (404) or at another version (412). */
  private async refusedWrite(target: Account, username: string): Promise<Error> {
    const current = await this.users.findAccountById(target.id)
    return current ? problems.preconditionFailed(entityTag(current)) : problems.userNotFound(username)
  }

  /** The account's live sessions, newest first; `callerToken` marks the caller's own. */
  async listSessions(actor: Account, username: string, callerToken: string | undefined): Promise<ListedSession[]> {
    const target = await this.target(actor, username)
    return this.sessions.listForUser(target.id, callerToken)
  }

  async endSession(actor: Account, username: string, sessionId: string): Promise<void> {
    const target = await this.target(actor, username)
    if (!(await this.sessions.endById(target.id, sessionId))) throw problems.sessionNotFound(username, sessionId)
  }

  /** Your own: every session but the caller's. An admin on another account: all of them. */
  async endOtherSessions(actor: Account, username: string, callerToken: string | undefined): Promise<void> {
    const access = accessTo(actor, username)
    const target = await this.target(actor, username)
    await this.sessions.endAllForUserExcept(target.id, access === 'self' ? callerToken : undefined)
  }

  /**
   * Sets a new password (the sign-up policy; not the username, not the current one), then ends
   * every other session of the account. On your own account the current password is checked first,
   * under `throttled` (the failed-login limit), and a wrong one is a 403.
   */
  async changePassword(
    actor: Account,
    username: string,
    change: PasswordChange,
    caller: HashContext,
    callerToken: string | undefined,
    throttled: Throttled
  ): Promise<void> {
    const access = accessTo(actor, username)
    const { currentPassword, newPassword } = change
    const issue = passwordProblem(newPassword)
    if (issue) throw refusePassword(issue, 'newPassword')
    if (access === 'self' && currentPassword === undefined)
      throw refusePassword('is required to change your own password', 'currentPassword')
    if (access === 'admin' && currentPassword !== undefined)
      throw refusePassword(
        "is only sent for your own account: an administrator sets another's without it",
        'currentPassword'
      )
    const user = await this.users.findByUsername(username)
    if (!user) throw problems.userNotFound(username)
    if (usernameKey(newPassword) === usernameKey(user.username))
      throw refusePassword('must not be the username', 'newPassword')
    if (currentPassword !== undefined) {
      const checkIssue = loginPasswordProblem(currentPassword)
      if (checkIssue) throw refusePassword(checkIssue, 'currentPassword')
      await throttled(async () => {
        if (!(await this.passwords.verify(currentPassword, user.passwordHash, caller))) throw problems.wrongPassword()
      })
      if (currentPassword === newPassword) throw refusePassword('must differ from the current password', 'newPassword')
    } else if (await this.passwords.verify(newPassword, user.passwordHash, caller)) {
      throw refusePassword('must differ from the current password', 'newPassword')
    }
    const passwordHash = await this.passwords.hash(newPassword, caller)
    const changed = await this.cache.write(user.id, () => this.users.changePassword(user.id, passwordHash, new Date()))
    if (!changed) throw problems.userNotFound(username)
    await this.sessions.endAllForUserExcept(user.id, access === 'self' ? callerToken : undefined)
  }

  /** Suspends the account (admins only, never their own), then ends every session it had. */
  async suspend(actor: Account, username: string, reason: string | null): Promise<Account> {
    suspensionBy(actor, username)
    const user = await this.users.findByUsername(username)
    if (!user) throw problems.userNotFound(username)
    if (!(await this.cache.write(user.id, () => this.users.suspend(user.id, reason, new Date()))))
      throw problems.userNotFound(username)
    await this.sessions.endAllForUser(user.id)
    const suspended = await this.users.findAccountById(user.id)
    if (!suspended) throw problems.userNotFound(username)
    return suspended
  }

  /** Lifts a suspension (admins only); lifting none is no error. False when there was none. */
  async unsuspend(actor: Account, username: string): Promise<boolean> {
    liftingSuspensionBy(actor)
    const user = await this.users.findByUsername(username)
    if (!user) throw problems.userNotFound(username)
    if (!user.suspended) return false
    if (!(await this.cache.write(user.id, () => this.users.unsuspend(user.id, new Date()))))
      throw problems.userNotFound(username)
    return true
  }

  /**
   * Deletes the account, then every session it had; with a precondition (If-Match), only at a
   * version it allows (the check is part of the DELETE). Returns the account as it was.
   */
  async remove(actor: Account, username: string, precondition?: Precondition): Promise<Account> {
    const target = await this.target(actor, username)
    const versions = allowedVersions(precondition, target.id)
    if (!(await this.cache.write(target.id, () => this.users.delete(target.id, versions)))) {
      const current = versions === 'any' ? undefined : await this.users.findAccountById(target.id)
      if (current) throw problems.preconditionFailed(entityTag(current))
      throw problems.userNotFound(username)
    }
    await this.sessions.endAllForUser(target.id)
    return target
  }

  /** The account the actor may act on, after the access policy has had its say. */
  private async target(actor: Account, username: string): Promise<Account> {
    if (accessTo(actor, username) === 'self') return actor
    const target = await this.users.findByUsername(username)
    if (!target) throw problems.userNotFound(username)
    return accountFields(target)
  }
}
