/**
 * Nothing secret reaches the logs: a whole session is logged at the most verbose level, and the
 * log is searched for the password, the token, its hash, the password hash and the header.
 */
import { PassThrough } from 'node:stream'
import t from 'tap'
import { hashToken } from '../../src/sessions/tokens.js'
import { forEachBackend, startService } from '../helper.js'

const SECRET_PASSWORD = 'Sekr3t-Passw0rd-XYZ'

forEachBackend(t, async (t, backend) => {
  const lines: string[] = []
  const logStream = new PassThrough()
  logStream.on('data', (chunk) => lines.push(String(chunk)))
  const service = await startService(t, backend, { LOG_LEVEL: 'trace' }, { logStream })

  await service.request('POST', '/user', {
    json: { username: 'logged', password: SECRET_PASSWORD, data: { note: 'hi' } }
  })
  const token = await service.logIn('logged', SECRET_PASSWORD)
  const formLogin = await service.request('POST', '/auth', { form: { username: 'logged', password: SECRET_PASSWORD } })
  await service.request('POST', '/auth', { json: { username: 'logged', password: `${SECRET_PASSWORD}-wrong` } })
  await service.request('POST', '/user', { json: { username: 'x', password: SECRET_PASSWORD } })
  await service.request('GET', '/', { token })
  await service.request('PUT', '/user/logged', { token, json: { data: { note: 'changed' } } })
  await service.request('GET', '/user/logged', { headers: { authorization: `Bearer ${token}x` } })
  await service.request('DELETE', '/auth', { token: formLogin.body.token })
  await service.request('DELETE', '/user/logged', { token })
  const row = await service.app.db.kysely.selectFrom('users').select('username').execute()
  t.equal(row.length, 0, 'the session ran to its end: the account deleted itself, no user row is left')

  const log = lines.join('')
  t.ok(log.length > 1000, `captured ${log.split('\n').length} log lines`)
  t.match(log, /"reqId"/, 'requests were logged')
  for (const [name, secret] of [
    ['password', SECRET_PASSWORD],
    ['token', token],
    ['second token', formLogin.body.token],
    ['token hash', hashToken(token)],
    ['bcrypt hash', '$2b$']
  ]) {
    t.notOk(log.includes(secret!), `no ${name} in the log`)
  }
  t.notMatch(log, /authorization/i, 'no Authorization header in the log')
})
