/**
 * Where Idempotency-Key records live: in Redis (or the cluster) when the session store is there,
 * in the database otherwise. A record is 'running' while its first request runs (a lease that
 * expires by itself, so a process that dies mid-request does not hold the key for long), then
 * 'done' with the kept answer for 24 hours. Keys arrive as SHA-256 hex: a store never sees one.
 */

/** An answer exactly as it is sent, so that it can be kept and replayed. */
export interface KeptResponse {
  status: number
  headers: Record<string, string>
  body: unknown
}

/** What a completed sign-up leaves behind: its answer, and the account, whose password a replay must prove. */
export interface KeptSignUp {
  accountId: string
  response: KeptResponse
}

/** A record some earlier request made. */
export type KeyRecord =
  | { state: 'running'; fingerprint: string }
  | { state: 'done'; fingerprint: string; kept: KeptSignUp }

/**
 * The running record this request holds: complete and release touch it only while it is still
 * this very attempt's, never a later one that took the key over after the lease ran out.
 */
export interface Lease {
  keyHash: string
  fingerprint: string
  /** Names this attempt to its store. */
  attempt: string
}

export type Begun = { state: 'started'; lease: Lease } | KeyRecord

export interface IdempotencyStore {
  /**
   * Takes the key for this request (a 'running' record that expires after `runningMs`), or returns
   * the live record that has it. An expired record counts as none. A failure is a 503.
   */
  begin(keyHash: string, fingerprint: string, runningMs: number): Promise<Begun>
  /** Keeps the answer for `keepMs`. False when the lease had run out and another attempt holds the key. */
  complete(lease: Lease, kept: KeptSignUp, keepMs: number): Promise<boolean>
  /** Frees the key again (the request failed: nothing is kept), if the lease is still this attempt's. */
  release(lease: Lease): Promise<void>
}

/** Reads a kept record back (and nothing of it but the record); anything else is a fault, not a record to act on. */
export function parseRecord(text: string): KeyRecord {
  const record = JSON.parse(text) as Partial<{ state: string; fingerprint: string; kept: KeptSignUp }>
  const { state, fingerprint, kept } = record
  if (typeof fingerprint === 'string') {
    if (state === 'running') return { state, fingerprint }
    if (state === 'done' && typeof kept?.accountId === 'string' && typeof kept.response?.status === 'number')
      return { state, fingerprint, kept: { accountId: kept.accountId, response: kept.response } }
  }
  throw new Error('idempotency store: a record of an unknown shape')
}
