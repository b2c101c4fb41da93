/**
 * Runs one of our command-line scripts (`npm run admin|migrate|export|import`) as the tests need
 * it: from source through tsx, so nothing needs a build first; in an empty working directory with
 * an environment built from scratch, so neither a contributor's `.env` nor the test runner's
 * NODE_OPTIONS reaches it, only the settings the test gives.
 */
import { execFile, type SpawnSyncReturns, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fromSource } from '../../scripts/lib/service-process.js'

const emptyDir = mkdtempSync(join(tmpdir(), 'accounts-script-'))
process.once('exit', () => rmSync(emptyDir, { recursive: true, force: true }))

type ScriptName = 'admin' | 'migrate' | 'export' | 'import'

/** The command line and the environment of `scripts/<name>.ts`; settings left undefined are not set. */
function scriptProcess(name: ScriptName, args: string[], env: Record<string, string | undefined>) {
  const script = fromSource(`scripts/${name}.ts`)
  const settings = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined)
  )
  return {
    command: script.command,
    args: [...script.args, ...args],
    options: {
      cwd: emptyDir,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? tmpdir(),
        ...script.env,
        ...settings
      },
      encoding: 'utf8' as const,
      timeout: 120_000
    }
  }
}

/**
 * `scripts/<name>.ts` with `args`; settings left undefined are not set. `stdout`: a file
 * descriptor to write to instead of capturing it (the result's `stdout` is then null).
 */
export function runScript(
  name: ScriptName,
  args: string[],
  env: Record<string, string | undefined>,
  { stdout }: { stdout?: number } = {}
): SpawnSyncReturns<string> {
  const script = scriptProcess(name, args, env)
  return spawnSync(script.command, script.args, {
    ...script.options,
    ...(stdout !== undefined && { stdio: ['pipe', stdout, 'pipe'] })
  })
}

export interface ScriptResult {
  status: number | null
  stdout: string
  stderr: string
}

/**
 * The same, without blocking this process: a service the test runs in-process keeps serving
 * meanwhile, as it would while an operator runs the command (a blocked event loop would let its
 * keep-alive timers close a connection just as the test's next request reuses it).
 */
export function runScriptInBackground(
  name: ScriptName,
  args: string[],
  env: Record<string, string | undefined>
): Promise<ScriptResult> {
  const script = scriptProcess(name, args, env)
  return new Promise((resolve) => {
    execFile(script.command, script.args, script.options, (error, stdout, stderr) => {
      const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null
      resolve({ status, stdout, stderr })
    })
  })
}
