/**
 * Who may touch an account. Every rule lives here:
 *
 * 1. Anyone may sign up (POST /user) and log in (POST /auth); GET / greets anyone.
 * 2. Every other route needs a live session: its user is the *actor*.
 * 3. An actor may read, replace the data of, and delete their own account.
 * 4. An actor with the admin flag may do the same to any account, and learns when one does not exist (404).
 * 5. Anyone else gets 403 whether or not the target exists, so usernames cannot be probed this way.
 * 6. The same goes for an account's sessions and password. Acting on one's own, "the others" means
 *    every session but the caller's, and a password change must prove the current password; an
 *    admin acting on another account ends all its sessions and sets a password without it.
 * 7. Only an admin may suspend an account or lift a suspension, and never their own (409). A
 *    suspended account has no sessions and cannot log in: it is an actor no more.
 * 8. Only an admin may list every account (GET /users) or read the whole audit trail (GET /events);
 *    an account's own events follow rule 3 and 4 (GET /user/{username}/events). A user sees where
 *    each event came from (address, request id) except when another account did it: an admin's
 *    address is not the user's business.
 * 9. No request can make anyone an admin: requests carry no admin field (the contract refuses
 *    unknown properties), and only `npm run admin` (an operator on the server) changes the flag.
 */
import { problems } from '../errors/problem.js'
import { type Account, usernameKey } from './account.js'

export type Access = 'self' | 'admin'

/** Suspending: an admin on another account; throws 403 for anyone else, 409 for an admin on themselves. */
export function suspensionBy(actor: Account, targetUsername: string): void {
  if (!actor.admin) throw problems.adminOnly()
  if (usernameKey(actor.username) === usernameKey(targetUsername)) throw problems.selfSuspension()
}

/** Why an account is suspended is the administrators' business alone. */
export function seesSuspensionReason(actor: Account): boolean {
  return actor.admin
}

/** Lifting a suspension: any admin (on themselves it changes nothing); throws 403 for anyone else. */
export function liftingSuspensionBy(actor: Account): void {
  if (!actor.admin) throw problems.adminOnly()
}

/** Listing every account, or every account's events: admins only; throws 403 for anyone else. */
export function everyAccountBy(actor: Account): void {
  if (!actor.admin) throw problems.adminOnly()
}

/** Whether the viewer of an account's events sees the address and request id of one done by `actor`. */
export function seesEventOrigin(viewer: Account, actor: string | null): boolean {
  return viewer.admin || actor === null || usernameKey(actor) === usernameKey(viewer.username)
}

/** How the actor may act on the account named `targetUsername`; throws 403 when they may not. */
export function accessTo(actor: Account, targetUsername: string): Access {
  if (usernameKey(actor.username) === usernameKey(targetUsername)) return 'self'
  if (actor.admin) return 'admin'
  throw problems.forbidden()
}
