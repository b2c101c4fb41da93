/**
 * OWASP API3:2023 Broken Object Property Level Authorization: no request can set `admin` or any
 * property the contract does not offer, and no response carries a secret.
 */
import t from 'tap'
import { expectStatus, PASSWORD, forEachBackend, problemOf, startService } from '../helper.js'

const FORBIDDEN_PROPERTIES = [
  'admin',
  'isAdmin',
  'role',
  'id',
  'passwordHash',
  'password_hash',
  'createdAt',
  'updatedAt',
  'username_key'
]
const USER_KEYS = ['admin', 'createdAt', 'data', 'suspended', 'updatedAt', 'username']

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)
  const token = await service.signUpAndLogIn('mallory')
  const mallory = service.client(token)

  // Properties the contract does not offer: bodies the typed client cannot send, so raw requests.
  for (const property of FORBIDDEN_PROPERTIES) {
    t.test(`"${property}" cannot be set`, async (t) => {
      const signUp = await service.request('POST', '/user', {
        json: { username: 'eve', password: PASSWORD, [property]: true }
      })
      expectStatus(t, signUp, 400, 'a JSON sign-up with it is 400')
      t.match(
        signUp.body.errors,
        [{ field: `/${property}`, message: 'is not an allowed property' }],
        'errors[] names it as not an allowed property'
      )
      const form = await service.request('POST', '/user', {
        form: { username: 'eve', password: PASSWORD, [property]: 'true' }
      })
      expectStatus(t, form, 400, 'a form sign-up with it is 400')
      const update = await service.request('PUT', '/user/mallory', { token, json: { data: {}, [property]: true } })
      expectStatus(t, update, 400, 'a PUT of your own account with it is 400')
    })
  }

  t.test('admin hidden inside data is only data', async (t) => {
    const user = await mallory.updateUser('mallory', { data: { admin: true, role: 'admin' } })
    t.equal(user.admin, false, 'an admin key inside data does not make an admin')
    t.equal((await problemOf(mallory.getUser('someone-else'))).status, 403, 'still not an admin')
    const row = await service.app.db.kysely
      .selectFrom('users')
      .select('admin')
      .where('username_key', '=', 'mallory')
      .executeTakeFirstOrThrow()
    t.notOk(Boolean(row.admin), 'the stored flag is false')
  })

  t.test('responses carry exactly the public properties', async (t) => {
    for (const user of [
      await mallory.getUser('mallory'),
      await mallory.updateUser('mallory', { data: { a: 1 } }),
      await service.client().signUp({ username: 'fresh', password: PASSWORD })
    ]) {
      t.strictSame(
        Object.keys(user).sort(),
        USER_KEYS,
        'a user is exactly username, admin, data, createdAt, updatedAt, suspended'
      )
      t.notMatch(JSON.stringify(user), /\$2[aby]\$|password/i, 'no hash, no password')
    }
    t.strictSame(Object.keys(await mallory.me()).sort(), ['data', 'username'], 'GET / is exactly username and data')
  })
})
