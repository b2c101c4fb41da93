/** The account use cases: sign up, log in and out, and read, update or delete an account. */
import { randomUUID } from 'node:crypto'
import { isUniqueViolation } from '../db/errors.js'
import type { Account } from './account.js'
import type { UsersRepository } from '../db/users-repository.js'
import { problems } from '../errors/problem.js'
import type { HashContext } from '../passwords/hash-scheduler.js'
import { costOf, type PasswordHasher } from '../passwords/password-hasher.js'
import { loginPasswordProblem, passwordProblem } from '../passwords/password-policy.js'
import type { AccountCache } from '../sessions/session-store.js'
import type { SessionClient, Sessions, StartedSession } from '../sessions/sessions.js'
import { accessTo } from './access-policy.js'
import { accountDataProblem } from './account-data.js'

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

function refusePassword(message: string) {
  return problems.validation(`body/password ${message}`, [{ field: '/password', message }])
}

export class Accounts {
  constructor(
    private readonly users: UsersRepository,
    private readonly sessions: Sessions,
    private readonly passwords: PasswordHasher,
    /** Every change to a user's row goes through it (see session-store.ts). */
    private readonly cache: AccountCache
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
    // Hashes made at another cost (an import, an older BCRYPT_COST) are brought up to date while
    // the password is at hand, so every login costs the same and old hashes do not linger.
    if (costOf(user.passwordHash) !== this.passwords.cost) {
      await this.users.replacePasswordHash(user.id, await this.passwords.hash(password, caller))
    }
    return this.sessions.start(user.id, client)
  }

  logOut(token: string): Promise<void> {
    return this.sessions.end(token)
  }

  /** The account behind a bearer token, or undefined when the token is not live. */
  authenticate(token: string): Promise<Account | undefined> {
    return this.sessions.accountFor(token)
  }

  read(actor: Account, username: string): Promise<Account> {
    return this.target(actor, username)
  }

  async replaceData(actor: Account, username: string, data: AccountData): Promise<Account> {
    checkData(data)
    const target = await this.target(actor, username)
    const now = new Date()
    const replaced = await this.cache.write(target.id, () => this.users.replaceData(target.id, data, now))
    if (!replaced) throw problems.userNotFound(username)
    return { ...target, data, updatedAt: now }
  }

  /** Deletes the account, then every session it had. */
  async remove(actor: Account, username: string): Promise<void> {
    const target = await this.target(actor, username)
    if (!(await this.cache.write(target.id, () => this.users.delete(target.id)))) throw problems.userNotFound(username)
    await this.sessions.endAllForUser(target.id)
  }

  /** The account the actor may act on, after the access policy has had its say. */
  private async target(actor: Account, username: string): Promise<Account> {
    if (accessTo(actor, username) === 'self') return actor
    const target = await this.users.findByUsername(username)
    if (!target) throw problems.userNotFound(username)
    return target
  }
}
