/**
 * Runs one of our command-line scripts (`npm run admin|migrate|export|import`) as the tests need
 * it: from source through tsx, so nothing needs a build first; in an empty working directory with
 * an environment built from scratch, so neither a contributor's `.env` nor the test runner's
 * NODE_OPTIONS reaches it, only the settings the test gives.
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fromSource } from '../../scripts/lib/service-process.js'

const emptyDir = mkdtempSync(join(tmpdir(), 'accounts-script-'))
process.once('exit', () => rmSync(emptyDir, { recursive: true, force: true }))

/** `scripts/<name>.ts` with `args`; settings left undefined are not set. */
export function runScript(
  name: 'admin' | 'migrate' | 'export' | 'import',
  args: string[],
  env: Record<string, string | undefined>
): SpawnSyncReturns<string> {
  const script = fromSource(`scripts/${name}.ts`)
  const settings = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined)
  )
  return spawnSync(script.command, [...script.args, ...args], {
    cwd: emptyDir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), ...script.env, ...settings },
    encoding: 'utf8',
    timeout: 120_000
  })
}
