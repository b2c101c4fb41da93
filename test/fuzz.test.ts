/**
 * Issue 4, hostile input: a property-based fuzz test (fast-check model-based testing).
 *
 * Each run starts from empty stores plus one administrator, then sends a generated sequence of
 * requests over real HTTP: valid ones from openapi.yaml and mutations of them (wrong types, missing
 * and extra fields, huge strings, deep nesting, duplicate and prototype keys, random bytes, wrong
 * and missing content types, bad, truncated and other users' tokens, hostile usernames in paths,
 * unknown methods and paths), and issue 14's conditional requests and merge patches (If-Match and
 * If-None-Match with current, stale, weak, foreign and malformed tags; patches made from the
 * account's data). Every answer must be < 500, a problem+json document when >= 400, and honour
 * openapi.yaml; and it must be the answer the model predicts (test/fuzz/model.ts), ETags included.
 * Every so often, and at the end of each run, the `users` table (versions included) and the session
 * store are compared with the model: they must hold exactly what the accepted requests should have
 * written.
 *
 * A backend that holds up is one passing assertion (and a count of what was sent); nothing is
 * reported per answer. A deviation fails it once, for the shrunk counterexample: headed by the first
 * problem, with the request (headers and body), the answer, every problem and the commands.
 *
 * Reproduce a run with the seed it prints: FUZZ_SEED=<seed> npx tap test/fuzz.test.ts. After a
 * failure, the `replay` line it prints (FUZZ_SEED, FUZZ_PATH, FUZZ_REPLAY_PATH) replays just the
 * shrunk counterexample. FUZZ_RUNS, FUZZ_COMMANDS and FUZZ_TIME_LIMIT_MS change the budget.
 */
import fc from 'fast-check'
import t from 'tap'
import { commandArbs, exchange, firstProblem, type Real } from './fuzz/commands.js'
import { storeProblems } from './fuzz/consistency.js'
import { ADMIN, PASSWORD } from './fuzz/inputs.js'
import { Model } from './fuzz/model.js'
import { Wire } from './fuzz/wire.js'
import { deleteRedisKeys, forEachBackend, startService } from './helper.js'
import { type RawRedis, rawRedis } from './support/raw-redis.js'

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
const PATH = process.env.FUZZ_PATH
const REPLAY_PATH = process.env.FUZZ_REPLAY_PATH
const RUNS = Number(process.env.FUZZ_RUNS ?? 10)
const MAX_COMMANDS = Number(process.env.FUZZ_COMMANDS ?? 250)
/** Per backend, shrinking included, so the file stays well inside tap's timeout. */
const TIME_LIMIT_MS = Number(process.env.FUZZ_TIME_LIMIT_MS ?? 25_000)

const sent: Record<string, number> = {}

t.comment(
  `fuzz seed ${SEED} (FUZZ_SEED=${SEED} to reproduce); ${RUNS} runs of up to ${MAX_COMMANDS} commands per backend`
)

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)
  const wire = new Wire(service)
  t.teardown(() => wire.close())
  let redis: RawRedis | undefined
  const target = service.config.redis
  if (target) {
    const client = await rawRedis(target)
    t.teardown(() => client.close())
    redis = client
  }
  const real: Real = { wire, consistency: (model, final) => storeProblems(service, redis, model, real, final) }

  /** Empty stores, then one administrator with a live session. */
  async function setup(): Promise<{ model: Model; real: Real }> {
    const db = service.app.db.kysely
    await db.deleteFrom('sessions').execute()
    await db.deleteFrom('users').execute()
    if (target) await deleteRedisKeys(target, service.redisPrefix)
    const model = new Model()
    const credentials = Buffer.from(JSON.stringify({ username: ADMIN, password: PASSWORD }))
    const headers = { 'content-type': 'application/json' }
    await exchange(model, real, {
      op: 'signUp',
      request: { method: 'POST', path: '/user', headers, body: credentials }
    })
    await service.makeAdmin(ADMIN)
    // Granting the flag is a change to the account: its version moves on.
    const admin = model.accounts.get(ADMIN)!
    admin.admin = true
    admin.version++
    await exchange(model, real, { op: 'logIn', request: { method: 'POST', path: '/auth', headers, body: credentials } })
    return { model, real }
  }

  const property = fc.asyncProperty(
    fc.commands(commandArbs, {
      maxCommands: MAX_COMMANDS,
      size: 'max',
      ...(REPLAY_PATH !== undefined && { replayPath: REPLAY_PATH })
    }),
    async (commands) => {
      let model: Model | undefined
      await fc.asyncModelRun(async () => {
        const started = await setup()
        model = started.model
        return started
      }, commands)
      const problems = await real.consistency(model!, true)
      if (problems.length)
        throw new Error(
          `after the last command, the stores differ from the model:\n${problems.map((p) => `  ✗ ${p}`).join('\n')}`
        )
    }
  )

  const started = Date.now()
  const details = await fc.check(property, {
    seed: SEED,
    numRuns: RUNS,
    interruptAfterTimeLimit: TIME_LIMIT_MS,
    ...(PATH !== undefined && { path: PATH })
  })
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  sent[backend] = wire.sent

  const statuses = [...wire.statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${status}×${count}`)
  t.comment(
    `${backend}: ${wire.sent} requests sent (${wire.viaHelper} through service.request, ${wire.sent - wire.viaHelper} raw) ` +
      `in ${details.numRuns} runs${details.interrupted ? ' (stopped at the time limit)' : ''}, ${seconds} s`
  )
  t.comment(`${backend}: statuses ${statuses.join(' ')}`)
  if (details.failed) {
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
    const commands = String(details.counterexample?.[0] ?? '')
    const replayPath = /replayPath="([^"]*)"/.exec(commands)?.[1]
    t.fail(`${backend}: ${firstProblem(error)}`, {
      replay: `FUZZ_SEED=${SEED} FUZZ_PATH=${details.counterexamplePath}${replayPath ? ` FUZZ_REPLAY_PATH='${replayPath}'` : ''} npx tap test/fuzz.test.ts`,
      shrunk: `${details.numShrinks} times`,
      commands: commands.replace(/ \/\*replayPath=.*\*\/$/, '').split(/,(?=(?:[a-zA-Z]+)\()/),
      failure: error.split('\n')
    })
  } else {
    t.pass(`${backend}: ${details.numRuns} runs, every answer as predicted, stores as modelled`)
  }
})

t.test('requests sent', async (t) => {
  const total = Object.values(sent).reduce((sum, n) => sum + n, 0)
  t.comment(
    `fuzz requests sent: ${Object.entries(sent)
      .map(([backend, n]) => `${backend} ${n}`)
      .join(', ')}; total ${total} (seed ${SEED})`
  )
  t.ok(total > 0, `${total} fuzzed requests in all`)
})
