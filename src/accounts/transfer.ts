/**
 * Moving accounts between databases as JSON lines, one account per line, password hashes
 * included (never a plaintext password), so nobody has to reset a password after a move.
 * Sessions are not moved: everyone logs in again on the new database.
 *
 * An import file is not trusted further than it must be: a hash must be one bcrypt can use, at a
 * cost the service can afford on every login, and an admin comes in only when the operator says so.
 */
import type { Db } from '../db/schema.js'
import { isUsername, type UserRecord, usernameKey } from './account.js'
import { UsersRepository } from '../db/users-repository.js'
import { accountDataProblem } from './account-data.js'

export interface ExportedAccount {
  id: string
  username: string
  passwordHash: string
  admin: boolean
  data: Record<string, unknown>
  createdAt: string
  updatedAt: string
  /** Its version (ETag) in the database it came from; absent in exports before account versions. */
  version?: number
}

export class ImportError extends Error {
  override name = 'ImportError'
}

const PAGE_SIZE = 1000
/** Rows per INSERT: 100 x 16 KiB of data stays far below MariaDB's default max_allowed_packet. */
const INSERT_BATCH = 100
/** `$2a$`, `$2b$` or `$2y$`, a two-digit cost, then 22 characters of salt and 31 of hash in bcrypt's base64. */
const BCRYPT_HASH = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/
/** bcrypt's own bounds: bcryptjs throws on any other cost, which would fail every login of the account. */
const MIN_BCRYPT_COST = 4
const MAX_BCRYPT_COST = 31
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Every account, one JSON line each, in id order. */
export async function* exportAccounts(db: Db): AsyncGenerator<string> {
  const users = new UsersRepository(db)
  let afterId: string | undefined
  for (;;) {
    const page = await users.page(afterId, PAGE_SIZE)
    for (const user of page) {
      const line: ExportedAccount = {
        id: user.id,
        username: user.username,
        passwordHash: user.passwordHash,
        admin: user.admin,
        data: user.data,
        createdAt: user.createdAt.toISOString(),
        updatedAt: user.updatedAt.toISOString(),
        version: user.version
      }
      yield `${JSON.stringify(line)}\n`
    }
    if (page.length < PAGE_SIZE) return
    afterId = page[page.length - 1]!.id
  }
}

export interface ImportOptions {
  /**
   * The dearest hash accepted: the service's own BCRYPT_COST. Each step above it doubles what a
   * login of that account costs, beyond what the hash threads and the login limits were sized for.
   */
  maxBcryptCost: number
  /** Lines with `admin: true` are refused unless the operator asked for admins (`--allow-admins`). */
  allowAdmins: boolean
}

export interface ImportReport {
  count: number
  /** The usernames imported as admins, in file order. */
  admins: string[]
}

const NOT_BCRYPT = 'passwordHash must be a bcrypt hash ($2a$, $2b$ or $2y$, a two-digit cost, 53 characters)'

/** Why bcrypt, or this service, cannot use the hash; undefined when it can. */
function hashProblem(hash: string, maxCost: number): string | undefined {
  const match = BCRYPT_HASH.exec(hash)
  if (!match) return NOT_BCRYPT
  const cost = Number(match[1])
  if (cost < MIN_BCRYPT_COST || cost > MAX_BCRYPT_COST)
    return `passwordHash has bcrypt cost ${cost}, outside bcrypt's ${MIN_BCRYPT_COST}-${MAX_BCRYPT_COST}`
  if (cost > maxCost)
    return `passwordHash has bcrypt cost ${cost}, above BCRYPT_COST (${maxCost}): each login would cost ${2 ** (cost - maxCost)} times a normal one; to accept it, run the import with BCRYPT_COST=${cost}`
  return undefined
}

function parseLine(text: string, lineNumber: number, options: ImportOptions): UserRecord {
  const fail = (why: string) => new ImportError(`line ${lineNumber}: ${why}`)
  let value: Partial<ExportedAccount>
  try {
    value = JSON.parse(text)
  } catch {
    throw fail('not valid JSON')
  }
  if (typeof value !== 'object' || value === null) throw fail('not a JSON object')
  const { id, username, passwordHash, admin, data, createdAt, updatedAt, version } = value
  if (typeof id !== 'string' || !UUID.test(id)) throw fail('id must be a UUID')
  if (typeof username !== 'string' || !isUsername(username))
    throw fail('username must be 3-32 of letters, digits, _ . -')
  if (typeof passwordHash !== 'string') throw fail(NOT_BCRYPT)
  const problem = hashProblem(passwordHash, options.maxBcryptCost)
  if (problem) throw fail(problem)
  if (typeof admin !== 'boolean') throw fail('admin must be true or false')
  if (admin && !options.allowAdmins)
    throw fail(
      `"${username}" is an admin: importing admins needs --allow-admins (npm run import -- --allow-admins <file>)`
    )
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw fail('data must be a JSON object')
  const dataProblem = accountDataProblem(data)
  if (dataProblem) throw fail(`data ${dataProblem}`)
  const created = new Date(createdAt ?? '')
  const updated = new Date(updatedAt ?? '')
  if (Number.isNaN(created.getTime()) || Number.isNaN(updated.getTime()))
    throw fail('createdAt and updatedAt must be ISO-8601 times')
  if (version !== undefined && !(Number.isSafeInteger(version) && version >= 1 && version < 2_147_483_647))
    throw fail('version must be a positive integer')
  // Suspensions are not carried over: an export holds what an account is, not what was done to it.
  // The version moves on by one, so no ETag from the database it came from matches the imported row.
  return {
    id,
    username,
    passwordHash,
    admin,
    data,
    createdAt: created,
    updatedAt: updated,
    suspended: null,
    version: (version ?? 0) + 1
  }
}

/**
 * Imports every line or none: all lines are checked first, then inserted in one transaction.
 * A username already in the target database (in any case) stops the import with its line number.
 */
export async function importAccounts(
  db: Db,
  lines: AsyncIterable<string>,
  options: ImportOptions
): Promise<ImportReport> {
  const accounts: UserRecord[] = []
  const lineOf = new Map<string, number>()
  const idLine = new Map<string, number>()
  let lineNumber = 0
  for await (const line of lines) {
    lineNumber++
    if (line.trim() === '') continue
    const account = parseLine(line, lineNumber, options)
    const key = usernameKey(account.username)
    const earlier = lineOf.get(key)
    if (earlier !== undefined)
      throw new ImportError(`line ${lineNumber}: username "${account.username}" also appears on line ${earlier}`)
    lineOf.set(key, lineNumber)
    const sameId = idLine.get(account.id)
    if (sameId !== undefined)
      throw new ImportError(`line ${lineNumber}: id ${account.id} also appears on line ${sameId}`)
    idLine.set(account.id, lineNumber)
    accounts.push(account)
  }

  await db.kysely.transaction().execute(async (trx) => {
    const users = new UsersRepository({ ...db, kysely: trx })
    for (let start = 0; start < accounts.length; start += INSERT_BATCH) {
      const batch = accounts.slice(start, start + INSERT_BATCH)
      const taken = await users.existingUsernames(batch.map((account) => account.username))
      if (taken.length) {
        const first = taken[0]!
        throw new ImportError(
          `line ${lineOf.get(usernameKey(first))}: username "${first}" already exists in the target database; nothing was imported`
        )
      }
      const takenId = (await users.existingIds(batch.map((account) => account.id)))[0]
      if (takenId)
        throw new ImportError(
          `line ${idLine.get(takenId)}: id ${takenId} already exists in the target database; nothing was imported`
        )
      await users.insertExact(batch)
    }
  })
  return {
    count: accounts.length,
    admins: accounts.filter((account) => account.admin).map((account) => account.username)
  }
}
