/** Small pieces for running servers as child processes, shared by the bench and the tests. */
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function sparePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Keeps the last `maxChars` of a child's stdout and stderr together; returns a reader of them. */
export function keepOutputTail(child: ChildProcess, maxChars: number): () => string {
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-maxChars)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return () => output
}
