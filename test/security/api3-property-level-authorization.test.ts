/**
 * OWASP API3:2023 Broken Object Property Level Authorization: no request can set `admin` or any
 * property the contract does not offer, and no response carries a secret.
 */
import t from 'tap'
import { PASSWORD, forEachBackend, startService } from '../helper.js'

const FORBIDDEN_PROPERTIES = ['admin', 'isAdmin', 'role', 'id', 'passwordHash', 'password_hash', 'createdAt', 'updatedAt', 'username_key']
const USER_KEYS = ['admin', 'createdAt', 'data', 'updatedAt', 'username']

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)
  const token = await service.signUpAndLogIn('mallory')

  for (const property of FORBIDDEN_PROPERTIES) {
    t.test(`"${property}" cannot be set`, async (t) => {
      const signUp = await service.request('POST', '/user', { json: { username: 'eve', password: PASSWORD, [property]: true } })
      t.equal(signUp.status, 400, 'at sign-up (JSON)')
      t.match(signUp.body.errors, [{ field: `/${property}`, message: 'is not an allowed property' }])
      const form = await service.request('POST', '/user', { form: { username: 'eve', password: PASSWORD, [property]: 'true' } })
      t.equal(form.status, 400, 'at sign-up (form)')
      const update = await service.request('PUT', '/user/mallory', { token, json: { data: {}, [property]: true } })
      t.equal(update.status, 400, 'on update')
    })
  }

  t.test('admin hidden inside data is only data', async (t) => {
    const res = await service.request('PUT', '/user/mallory', { token, json: { data: { admin: true, role: 'admin' } } })
    t.equal(res.status, 200)
    t.equal(res.body.admin, false)
    t.equal((await service.request('GET', '/user/someone-else', { token })).status, 403, 'still not an admin')
    const row = await service.app.db.kysely.selectFrom('users').select('admin').where('username_key', '=', 'mallory').executeTakeFirstOrThrow()
    t.notOk(Boolean(row.admin), 'the stored flag is false')
  })

  t.test('responses carry exactly the public properties', async (t) => {
    for (const res of [
      await service.request('GET', '/user/mallory', { token }),
      await service.request('PUT', '/user/mallory', { token, json: { data: { a: 1 } } }),
      await service.request('POST', '/user', { json: { username: 'fresh', password: PASSWORD } })
    ]) {
      t.strictSame(Object.keys(res.body).sort(), USER_KEYS)
      t.notMatch(JSON.stringify(res.body), /\$2[aby]\$|password/i, 'no hash, no password')
    }
    t.strictSame(Object.keys((await service.request('GET', '/', { token })).body).sort(), ['data', 'username'])
  })
})
