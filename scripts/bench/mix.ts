/**
 * The requests of issue 16, each as a random one of the seeded accounts with its own live token:
 * GET /user/{username}, GET / and PUT /user/{username} alone, and mixed 80 / 10 / 10; and the
 * throughput the mix should reach, from the pure read and PUT figures of the same run.
 */
import type { SeededUser } from './seed.js'

export interface AccountRequest {
  method: 'GET' | 'PUT'
  path: string
  headers: Record<string, string>
  body?: string
}

/** The PUT body of the bench (also what the write limit writes): a small document that changes every time. */
export function putData(username: string): Record<string, unknown> {
  return { email: `${username}@example.com`, plan: 'pro', tags: ['bench'], n: Math.random() }
}

const bearer = (user: SeededUser) => ({ authorization: `Bearer ${user.token}` })

export const accountRequests = {
  getUser: (user: SeededUser): AccountRequest => ({
    method: 'GET',
    path: `/user/${user.username}`,
    headers: bearer(user)
  }),
  root: (user: SeededUser): AccountRequest => ({ method: 'GET', path: '/', headers: bearer(user) }),
  putUser: (user: SeededUser): AccountRequest => ({
    method: 'PUT',
    path: `/user/${user.username}`,
    headers: { ...bearer(user), 'content-type': 'application/json' },
    body: JSON.stringify({ data: putData(user.username) })
  })
}

/** The mix: 80 % GET /user/{username}, 10 % GET /, 10 % PUT /user/{username}. */
export function mixed(user: SeededUser): AccountRequest {
  const r = Math.random()
  if (r < 0.8) return accountRequests.getUser(user)
  return r < 0.9 ? accountRequests.root(user) : accountRequests.putUser(user)
}

/** Both kinds of GET count as reads. */
export const MIX_WEIGHTS = { read: 0.9, put: 0.1 }

/** What the mix would do if each request cost what it costs alone: H = 1 / (0.9 / read + 0.1 / put). */
export function harmonicMean(read: number, put: number): number {
  return 1 / (MIX_WEIGHTS.read / read + MIX_WEIGHTS.put / put)
}
