/**
 * A server as a child process, started one way for the tests (test/support/processes.ts), the
 * README check (scripts/check-readme.ts) and the bench (scripts/bench/proc.ts): a spare port on
 * 127.0.0.1, an environment built from scratch (PATH, HOME and what the caller gives: nothing else
 * of this process's, no NODE_OPTIONS, no npm_*), the tail of its output kept for error messages, a
 * wait until `GET /` answers 200 that gives up at once when the child exits, and stop/kill.
 * No test framework here: the tests tie it to `t.teardown` themselves.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { keepOutputTail, sparePort } from './processes.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** What to run; `env` is added to the environment (under the caller's settings). */
export interface ServerCommand {
  command: string
  args: string[]
  env?: Record<string, string>
}

/**
 * The service from source, `node --import tsx src/server.ts`: the entry point `npm start` runs
 * (compiled there by tsc, here by tsx), so nothing checks a stale dist/ and nothing needs a build.
 * tsx and the tsconfig are given by absolute path, so it runs from any working directory (one
 * without a `.env`, say).
 */
export function serviceFromSource(): ServerCommand {
  return fromSource('src/server.ts')
}

/** Any entry point of ours run from source through tsx (`scripts/admin.ts`, say), from any directory. */
export function fromSource(path: string): ServerCommand {
  return {
    command: process.execPath,
    args: ['--import', import.meta.resolve('tsx'), join(ROOT, path)],
    env: { TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json') }
  }
}

/** The service as `npm run build` built it and `npm start` runs it: what the bench measures. */
export function builtService(): ServerCommand {
  return { command: process.execPath, args: [join(ROOT, 'dist/src/server.js')] }
}

/** A script of our own run by this Node (the bench's bare Fastify, say). */
export function nodeScript(path: string): ServerCommand {
  return { command: process.execPath, args: [path] }
}

export interface SpawnServerOptions {
  /** Who it is, in error messages ("the service"). */
  name?: string
  /** Settings; PATH and HOME default to this process's, HOST and PORT are always 127.0.0.1 and the spare port. */
  env?: Record<string, string>
  /** Working directory (the service reads `.env` from it); the repository by default. */
  cwd?: string
  /** How much of its output (stdout and stderr together) to keep, in characters. */
  outputChars?: number
}

export interface ServerExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ServerProcess {
  name: string
  child: ChildProcess
  port: number
  /** http://127.0.0.1:<port> */
  url: string
  /** Resolves once the process has exited (or could not be started). */
  exit: Promise<ServerExit>
  /** The last of what it printed, stdout and stderr together. */
  output(): string
  /**
   * Polls `probe` every 100 ms until it returns true. Gives up at once, with the output in the error,
   * when the process exits; after `timeoutMs` kills it and gives up.
   */
  until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>
  /** Until `GET /` answers 200. */
  ready(timeoutMs?: number): Promise<void>
  /** SIGTERM, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<ServerExit>
  /** SIGKILL (a crash, an OOM kill); resolves once it has exited. */
  kill(): Promise<ServerExit>
}

/** A server that did not come up: the message says why and holds its output. */
export class ServerStartError extends Error {}

/** Backstop: a child still running when this process exits is killed. */
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/**
 * Spawns through `setpriv --pdeathsig KILL` (util-linux), which then execs the command (same pid):
 * should this process die without stopping the child (killed on a timeout, say), the kernel kills
 * it; should it exit normally with the child still running, the backstop above kills it.
 */
export function spawnTied(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', command, ...args], options)
  live.add(child)
  child.once('exit', () => live.delete(child))
  child.once('error', () => {
    if (child.pid === undefined) live.delete(child)
  })
  return child
}

function running(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null
}

function describeExit({ code, signal }: ServerExit, spawnError: Error | undefined): string {
  if (spawnError) return `could not be started (${spawnError.message})`
  return signal ? `was killed by ${signal}` : `exited with code ${code}`
}

/** The status of one GET, or 0 when nothing answered (not listening yet, reset, timed out). */
function statusOf(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 1000 }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', () => resolve(0))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(0))
    req.end()
  })
}

/** Spawns the server on a spare port; `ready()` then waits until it answers. */
export async function spawnServer(command: ServerCommand, options: SpawnServerOptions = {}): Promise<ServerProcess> {
  const name = options.name ?? 'the server'
  const port = await sparePort()
  const child = spawnTied(command.command, command.args, {
    cwd: options.cwd ?? ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: process.env.HOME ?? tmpdir(),
      ...command.env,
      ...options.env,
      HOST: '127.0.0.1',
      PORT: String(port)
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own: with WORKERS > 1 the service is a cluster primary and its
    // workers, and a worker outlives a primary killed with SIGKILL (it keeps serving the sockets
    // it holds). kill() and stop() end the whole group, so no worker is left behind.
    detached: true
  })
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
    } catch {
      // The group is gone already.
    }
  }
  const output = keepOutputTail(child, options.outputChars ?? 20_000)
  let spawnError: Error | undefined
  const exit = new Promise<ServerExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    // Also emitted when a signal cannot be sent: only one before a pid means it never started.
    child.on('error', (error) => {
      if (child.pid !== undefined) return
      spawnError = error
      resolve({ code: null, signal: null })
    })
  })
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
  /** The output, once the pipes have been read to their end (or half a second has passed). */
  const finalOutput = async () => {
    await Promise.race([closed, sleep(500)])
    return output()
  }

  const server: ServerProcess = {
    name,
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    exit,
    output,
    async until(what, probe, timeoutMs = 30_000) {
      const deadline = performance.now() + timeoutMs
      const exited = exit.then(() => 'exited' as const)
      for (;;) {
        if (!running(child)) {
          const how = describeExit(await exit, spawnError)
          throw new ServerStartError(`${name} ${how} before it ${what}:\n${await finalOutput()}`)
        }
        const answer = Promise.resolve()
          .then(probe)
          .catch(() => false)
        if ((await Promise.race([answer, exited])) === true) return
        if (performance.now() > deadline && running(child)) {
          await server.kill()
          throw new ServerStartError(
            `${name} on port ${port} had not ${what} after ${timeoutMs / 1000} s (killed it):\n${await finalOutput()}`
          )
        }
        await Promise.race([sleep(100), exited])
      }
    },
    ready(timeoutMs) {
      return server.until('answered GET / with 200', async () => (await statusOf(port, '/')) === 200, timeoutMs)
    },
    async stop(graceMs = 10_000) {
      if (running(child)) {
        // SIGTERM to the primary alone: it stops its workers gracefully itself.
        child.kill('SIGTERM')
        const timer = setTimeout(killGroup, graceMs)
        await exit
        clearTimeout(timer)
      }
      killGroup()
      return exit
    },
    async kill() {
      // The group even when the primary is gone (a test may have SIGKILLed it): its workers may not be.
      killGroup()
      return exit
    }
  }
  return server
}

/** Spawns the server and waits until it answers `GET /` with 200 (see `spawnServer`). */
export async function startServer(command: ServerCommand, options: SpawnServerOptions = {}): Promise<ServerProcess> {
  const server = await spawnServer(command, options)
  await server.ready()
  return server
}
