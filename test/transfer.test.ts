/**
 * `npm run export` from SQLite and `npm run import` into MariaDB and PostgreSQL: everyone logs
 * in with the same password and sees the same data. An import is all or nothing, takes only
 * hashes bcrypt can use at a cost the service affords, and admins only when told to.
 */
import { closeSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { openDb } from '../src/db/connect.js'
import { type Backend, PASSWORD, createDatabase, expectStatus, onBackend, startService } from './helper.js'
import { runScript } from './support/scripts.js'

/** A temp dir of the test's own, removed when it ends. */
async function tempDir(t: Test, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** What `npm run export` and `npm run import -- <file>` run (scripts/*.ts), from source, without Redis. */
function script(databaseUrl: string, name: 'export' | 'import', ...args: string[]) {
  return runScript(name, args, { DATABASE_URL: databaseUrl })
}

/** The permission bits of a file, in octal: '600'. */
const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8)

const people = [
  { username: 'Ben', password: PASSWORD, data: { email: 'ben@example.com', tags: ['a', 'b'], nested: { n: 1 } } },
  { username: 'zoe-1', password: 'pässwörd-ünïcode', data: { 名前: '山田', emoji: '😀' } },
  { username: 'empty.data', password: 'x'.repeat(72), data: {} }
]

// Each import needs SQLite (the source) and its target: it runs when this run covers both.
onBackend(t, 'sqlite', 'export from SQLite, import into MariaDB and PostgreSQL', async (t) => {
  const source = await startService(t, 'sqlite')
  for (const person of people)
    expectStatus(t, await source.request('POST', '/user', { json: person }), 201, `${person.username} signs up`)
  await source.makeAdmin('Ben')
  const originals = new Map<string, unknown>()
  const sourceTags = new Map<string, string>()
  for (const person of people) {
    const token = await source.logIn(person.username, person.password)
    const read = await source.request('GET', `/user/${person.username}`, { token })
    originals.set(person.username, read.body)
    sourceTags.set(person.username, read.headers.get('etag')!)
  }

  const exported = script(source.config.databaseUrl, 'export')
  t.equal(exported.status, 0, 'export exits 0', { stderr: exported.stderr })
  t.equal(exported.stderr.trim(), `exported ${people.length} account(s)`, 'export counts the accounts on stderr')
  const lines = exported.stdout.trim().split('\n')
  t.equal(lines.length, people.length, 'one line per account')
  for (const person of people)
    t.notOk(exported.stdout.includes(person.password), `${person.username}'s plaintext password is not in the export`)
  t.ok(
    lines.every((line) => /"passwordHash":"\$2[aby]\$04\$/.test(line)),
    'hashes are exported'
  )
  // `npm run export > accounts.jsonl`: the shell creates the file with its umask, 0644 as a rule.
  const file = join(await tempDir(t, 'accounts-export-'), 'accounts.jsonl')
  writeFileSync(file, '', { mode: 0o644 })
  const output = openSync(file, 'w')
  const toFile = runScript('export', [], { DATABASE_URL: source.config.databaseUrl }, { stdout: output })
  closeSync(output)
  t.equal(toFile.status, 0, 'an export into a file exits 0', { stderr: toFile.stderr })
  t.equal(modeOf(file), '600', 'the file it was redirected to, created 0644, is now readable by its owner alone')
  t.match(toFile.stderr, /readable by others \(0644\): it is now 0600/, 'and the export says so')
  t.equal(readFileSync(file, 'utf8'), exported.stdout, 'the file holds the same export')
  const admins = lines.flatMap((line, at) => (JSON.parse(line).admin ? [at + 1] : []))
  t.equal(admins.length, 1, 'one account of the export is an admin')

  const targets: Array<[engine: 'mariadb' | 'postgres', backend: Backend]> = [
    ['mariadb', 'mariadb-redis'],
    ['postgres', 'postgres']
  ]
  for (const [kind, backend] of targets) {
    onBackend(t, backend, kind, async (t) => {
      const databaseUrl = await createDatabase(t, kind)
      const refused = script(databaseUrl, 'import', file)
      t.equal(refused.status, 1, 'an import holding an admin exits 1 without --allow-admins', {
        stdout: refused.stdout
      })
      t.equal(
        refused.stderr.trim(),
        `import refused: line ${admins[0]}: "Ben" is an admin: importing admins needs --allow-admins (npm run import -- --allow-admins <file>)`,
        'and names the line, the admin and the flag'
      )
      const imported = script(databaseUrl, 'import', '--allow-admins', file)
      t.equal(imported.status, 0, `import into ${kind} with --allow-admins exits 0`, { stderr: imported.stderr })
      t.equal(
        imported.stdout.trim(),
        `imported ${people.length} account(s), 1 of them admin(s): Ben`,
        'import counts the accounts and names the admin (the refused import wrote nothing: no name was taken)'
      )

      const target = await startService(t, backend, { DATABASE_URL: databaseUrl })
      for (const person of people) {
        const token = await target.logIn(person.username, person.password)
        const account = await target.request('GET', `/user/${person.username}`, { token })
        t.strictSame(account.body, originals.get(person.username), `${person.username} is the same account on ${kind}`)
        const before = sourceTags.get(person.username)!
        const after = account.headers.get('etag')!
        t.equal(
          after,
          before.replace(/^"(\d+)-/, (_, version) => `"${Number(version) + 1}-`),
          `${person.username}'s version moved on by one, so no ETag from the source matches on ${kind}`
        )
      }
      const missing = await target.request('GET', '/user/nobody-here', { token: await target.logIn('ben') })
      expectStatus(t, missing, 404, 'Ben is still an admin there (404, not 403, for a missing user)')

      // A second import of the same file is refused whole: nothing changes.
      const again = script(databaseUrl, 'import', '--allow-admins', file)
      t.equal(again.status, 1, 'a second import of the same file exits 1', { stdout: again.stdout })
      t.match(
        again.stderr.trim(),
        /^import refused: line 1: username "[^"]+" already exists in the target database; nothing was imported$/,
        'and says the first account already exists and nothing was imported'
      )
    })
  }
})

t.test('a bad line refuses the whole import', async (t) => {
  const databaseUrl = await createDatabase(t, 'sqlite')
  const dir = await tempDir(t, 'accounts-import-')
  const good = {
    id: '0b0e8f4e-4a4c-4d53-9a57-2c1f0e0f8a11',
    username: 'okay',
    passwordHash: `$2b$04$${'a'.repeat(53)}`,
    admin: false,
    data: {},
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z'
  }
  const other = { ...good, id: '2b0e8f4e-4a4c-4d53-9a57-2c1f0e0f8a11', username: 'other' }
  const hash = (prefix: string, length = 53) =>
    JSON.stringify({ ...other, passwordHash: `${prefix}${'a'.repeat(length)}` })
  const cases: Array<[string, string, RegExp]> = [
    [
      'plaintext instead of a hash',
      JSON.stringify({ ...good, passwordHash: 'hunter22' }),
      /line 2: passwordHash must be a bcrypt hash/
    ],
    ['a hash a character short', hash('$2b$04$', 52), /line 2: passwordHash must be a bcrypt hash/],
    ['an unknown bcrypt version', hash('$2x$04$'), /line 2: passwordHash must be a bcrypt hash/],
    // bcryptjs throws on these: every login of the account would fail with a 500.
    ['cost 03, below bcrypt', hash('$2b$03$'), /line 2: passwordHash has bcrypt cost 3, outside bcrypt's 4-31$/m],
    ['cost 99, above bcrypt', hash('$2b$99$'), /line 2: passwordHash has bcrypt cost 99, outside bcrypt's 4-31$/m],
    // 16 pins a hash thread for about 5 s a login: above the service's BCRYPT_COST (12 here), refused.
    [
      'cost 16, above BCRYPT_COST',
      hash('$2a$16$'),
      /line 2: passwordHash has bcrypt cost 16, above BCRYPT_COST \(12\): each login would cost 16 times a normal one; to accept it, run the import with BCRYPT_COST=16$/m
    ],
    [
      'an admin, without --allow-admins',
      JSON.stringify({ ...other, admin: true }),
      /line 2: "other" is an admin: importing admins needs --allow-admins/
    ],
    ['not JSON', '{oops', /line 2: not valid JSON/],
    [
      'same name twice',
      JSON.stringify({ ...good, id: '1b0e8f4e-4a4c-4d53-9a57-2c1f0e0f8a11', username: 'OKAY' }),
      /line 2: username "OKAY" also appears on line 1/
    ]
  ]
  for (const [name, second, message] of cases) {
    const file = join(dir, `${name.replaceAll(' ', '-')}.jsonl`)
    writeFileSync(file, `${JSON.stringify(good)}\n${second}\n`)
    const result = script(databaseUrl, 'import', file)
    t.equal(result.status, 1, `${name}: the import exits 1`, { stdout: result.stdout })
    t.match(result.stderr, message, `${name}: the refusal names the line and what is wrong with it`)
  }
  const exported = script(databaseUrl, 'export')
  t.equal(exported.stdout, '', 'nothing was imported')
  const db = openDb(databaseUrl, { poolSize: 1 })
  const rows = await db.kysely.selectFrom('users').select('id').execute()
  await db.kysely.destroy()
  t.equal(rows.length, 0, 'the database holds no account after the refused imports')

  // The operator may accept dearer hashes: BCRYPT_COST is the limit (and the service's own cost).
  const file = join(dir, 'cost-16.jsonl')
  writeFileSync(file, `${JSON.stringify(good)}\n${hash('$2y$16$')}\n`)
  const accepted = runScript('import', [file], { DATABASE_URL: databaseUrl, BCRYPT_COST: '16' })
  t.equal(accepted.status, 0, 'with BCRYPT_COST=16 a cost-16 hash is imported', { stderr: accepted.stderr })
  t.equal(accepted.stdout.trim(), 'imported 2 account(s)', 'with the rest of the file')
})
