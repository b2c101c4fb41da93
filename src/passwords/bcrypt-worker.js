// Runs in a worker thread (piscina): bcrypt is pure CPU, and here it cannot stall the event loop.
// Plain JavaScript so the same file loads from src/ under tsx and from dist/ after a build.
import bcrypt from 'bcryptjs'
import { bcryptInput } from './bcrypt-input.js'

/**
 * @param {{ op: 'hash', password: string, cost: number } | { op: 'compare', password: string, hash: string }} task
 * @returns {string | boolean}
 */
export default function run(task) {
  const input = bcryptInput(task.password)
  if (task.op === 'hash') return bcrypt.hashSync(input, task.cost)
  return bcrypt.compareSync(input, task.hash)
}
