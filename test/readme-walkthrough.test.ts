/**
 * The README's curl and HTTPie walkthroughs, run as written against a fresh service
 * (scripts/check-readme.ts): a README that no longer tells the truth fails the tests.
 */
import { spawnSync } from 'node:child_process'
import t from 'tap'

t.test('the README walkthroughs print what the README shows', async (t) => {
  const run = spawnSync(process.execPath, ['--import=tsx', 'scripts/check-readme.ts'], {
    encoding: 'utf8',
    timeout: 110_000
  })
  t.equal(run.status, 0, 'scripts/check-readme.ts (npm run check:readme) passes', {
    stdout: run.stdout,
    stderr: run.stderr
  })
})
