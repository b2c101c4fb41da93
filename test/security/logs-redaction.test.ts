/**
 * Nothing secret reaches the logs: a whole session (a password change and the list of sessions
 * included) is logged at the most verbose level, and the
 * log is searched for the password, the token, its hash, the password hash and the header.
 */
import { PassThrough } from 'node:stream'
import t from 'tap'
import { hashToken } from '../../src/sessions/tokens.js'
import { expectStatus, forEachBackend, startService } from '../helper.js'

const SECRET_PASSWORD = 'Sekr3t-Passw0rd-XYZ'

forEachBackend(t, async (t, backend) => {
  const lines: string[] = []
  const logStream = new PassThrough()
  logStream.on('data', (chunk) => lines.push(String(chunk)))
  const service = await startService(t, backend, { LOG_LEVEL: 'trace' }, { logStream })

  // Each step is checked, so the log searched below is that of a whole session, every branch reached.
  const signUp = { username: 'logged', password: SECRET_PASSWORD, data: { note: 'hi' } }
  expectStatus(t, await service.request('POST', '/user', { json: signUp }), 201, 'sign-up with data succeeds')
  const token = await service.logIn('logged', SECRET_PASSWORD)
  const form = { username: 'logged', password: SECRET_PASSWORD }
  const formLogin = await service.request('POST', '/auth', { form })
  expectStatus(t, formLogin, 201, 'a form login succeeds')
  const wrong = { username: 'logged', password: `${SECRET_PASSWORD}-wrong` }
  expectStatus(t, await service.request('POST', '/auth', { json: wrong }), 401, 'a wrong password is refused')
  const invalid = { username: 'x', password: SECRET_PASSWORD }
  expectStatus(t, await service.request('POST', '/user', { json: invalid }), 400, 'an invalid sign-up is refused')
  expectStatus(t, await service.request('GET', '/', { token }), 200, 'the profile is read with the token')
  const put = { token, json: { data: { note: 'changed' } } }
  expectStatus(t, await service.request('PUT', '/user/logged', put), 200, 'the data is replaced')
  const badToken = { headers: { authorization: `Bearer ${token}x` } }
  expectStatus(t, await service.request('GET', '/user/logged', badToken), 401, 'a wrong token is refused')
  const listed = await service.request('GET', '/user/logged/sessions', { token })
  expectStatus(t, listed, 200, 'the sessions are listed')
  const NEW_PASSWORD = 'N3w-Sekr3t-Passw0rd-QRS'
  const wrongCurrent = { token, json: { currentPassword: `${SECRET_PASSWORD}-wrong`, newPassword: NEW_PASSWORD } }
  expectStatus(
    t,
    await service.request('PUT', '/user/logged/password', wrongCurrent),
    403,
    'a wrong current password is refused'
  )
  const change = { token, json: { currentPassword: SECRET_PASSWORD, newPassword: NEW_PASSWORD } }
  expectStatus(t, await service.request('PUT', '/user/logged/password', change), 204, 'the password is changed')
  const again = await service.request('POST', '/auth', { form: { username: 'logged', password: NEW_PASSWORD } })
  expectStatus(t, again, 201, 'a login with the new password succeeds')
  expectStatus(t, await service.request('DELETE', '/user/logged/sessions', { token }), 204, 'every other session ends')
  const logout = { token: formLogin.body.token }
  expectStatus(
    t,
    await service.request('DELETE', '/auth', logout),
    401,
    "the form login's token ended with the password change"
  )
  expectStatus(t, await service.request('DELETE', '/user/logged', { token }), 204, 'the account deletes itself')
  const row = await service.app.db.kysely.selectFrom('users').select('username').execute()
  t.equal(row.length, 0, 'the session ran to its end: the account deleted itself, no user row is left')

  const log = lines.join('')
  t.ok(log.length > 1000, `captured ${log.split('\n').length} log lines`)
  t.match(log, /"reqId"/, 'requests were logged')
  for (const [name, secret] of [
    ['password', SECRET_PASSWORD],
    ['new password', NEW_PASSWORD],
    ['token of the login after the change', again.body.token],
    ['token', token],
    ['second token', formLogin.body.token],
    ['token hash', hashToken(token)],
    ['bcrypt hash', '$2b$']
  ]) {
    t.notOk(log.includes(secret!), `no ${name} in the log`)
  }
  t.notMatch(log, /authorization/i, 'no Authorization header in the log')
})
