/** One piscina task of the bcrypt limit: compare a password against a hash, as a login does. */
import bcrypt from 'bcryptjs'

export default function compare(task: { password: string; hash: string }): boolean {
  return bcrypt.compareSync(task.password, task.hash)
}
