/** Malformed requests get a clear problem+json 4xx, never a 5xx, and change nothing. */
import t from 'tap'
import { PASSWORD, expectStatus, forEachBackend, startService } from './helper.js'

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)
  const token = await service.signUpAndLogIn('ben')

  const cases: Array<[string, string, string, Parameters<typeof service.request>[2], number, RegExp]> = [
    [
      'malformed JSON',
      'POST',
      '/user',
      { body: '{"username": "x', headers: { 'content-type': 'application/json' } },
      400,
      /not valid JSON/
    ],
    [
      'empty JSON body',
      'POST',
      '/auth',
      { body: '', headers: { 'content-type': 'application/json' } },
      400,
      /body is required: this operation takes application\/json or application\/x-www-form-urlencoded/
    ],
    [
      'no body and no Content-Type',
      'PUT',
      '/user/ben',
      { token },
      400,
      /body is required: this operation takes application\/json/
    ],
    ['JSON that is not an object', 'POST', '/user', { json: ['ben', PASSWORD] }, 400, /must be object/],
    [
      'text/plain body',
      'POST',
      '/user',
      { body: 'username=x', headers: { 'content-type': 'text/plain' } },
      415,
      /takes application\/json or application\/x-www-form-urlencoded, not text\/plain/
    ],
    [
      'prototype poisoning',
      'POST',
      '/user',
      {
        body: `{"username":"eve","password":"${PASSWORD}","__proto__":{"admin":true}}`,
        headers: { 'content-type': 'application/json' }
      },
      400,
      /must not use the keys "__proto__"/
    ],
    [
      'constructor.prototype poisoning',
      'POST',
      '/user',
      {
        body: `{"username":"eve","password":"${PASSWORD}","data":{"constructor":{"prototype":{"admin":true}}}}`,
        headers: { 'content-type': 'application/json' }
      },
      400,
      /constructor\.prototype/
    ],
    [
      'a form where only JSON is declared',
      'PUT',
      '/user/ben',
      { token, form: { data: 'x', admin: 'true' } },
      415,
      /takes application\/json, not application\/x-www-form-urlencoded/
    ],
    [
      'body over 64 KiB',
      'POST',
      '/user',
      { json: { username: 'big', password: PASSWORD, data: { blob: 'x'.repeat(70_000) } } },
      413,
      /too large/i
    ],
    ['missing password', 'POST', '/user', { json: { username: 'eve' } }, 400, /body\/password is required/],
    [
      'number as password',
      'POST',
      '/auth',
      { json: { username: 'ben', password: 12345678 } },
      400,
      /body\/password must be string/
    ],
    [
      'data that is not an object',
      'PUT',
      '/user/ben',
      { token, json: { data: 'hello' } },
      400,
      /body\/data must be object/
    ],
    ['username with a slash, encoded', 'GET', '/user/..%2Fadmin', { token }, 400, /params\/username/],
    ['username too long in the path', 'GET', `/user/${'a'.repeat(90)}`, { token }, 400, /params\/username/],
    ['path far too long', 'GET', `/user/${'a'.repeat(300)}`, { token }, 414, /long/i],
    ['bad percent-encoding', 'GET', '/user/%E0%A4%A', { token }, 400, /./],
    ['unknown route', 'GET', '/accounts', {}, 404, /no route GET \/accounts/i],
    ['bearer token with garbage', 'GET', '/', { headers: { authorization: 'Bearer !!not-a-token!!' } }, 401, /invalid/]
  ]
  for (const [name, method, path, options, status, detail] of cases) {
    t.test(name, async (t) => {
      const res = await service.request(method, path, options)
      expectStatus(t, res, status, `refused with ${status}`)
      t.match(res.contentType, /^application\/problem\+json/, 'as a problem document')
      t.match(res.body, { status, title: String, type: String }, 'with its status, a title and a type')
      t.match(res.body.detail, detail, 'whose detail says what is wrong')
    })
  }

  t.test('nothing was written by the refused requests', async (t) => {
    const rows = await service.app.db.kysely.selectFrom('users').select('username').execute()
    t.same(
      rows.map((r) => r.username),
      ['ben'],
      'the users table holds only ben'
    )
    t.same(
      (await service.request('GET', '/', { token })).body,
      { username: 'ben', data: {} },
      "and ben's data is untouched"
    )
  })
})
