/**
 * Settings every service under test gets, in-process or spawned, unless the test overrides them:
 * bcrypt's lowest cost so the suite stays quick (one test checks the real default), and rate
 * limits and the hash queue's per-address share and deadline out of the way of bursts from one
 * address on a busy machine (the rate-limit and hash-flood tests set real ones).
 */
export const TEST_ENV: Readonly<Record<string, string>> = {
  BCRYPT_COST: '4',
  HASH_THREADS: '2',
  HASH_PER_CLIENT: '1000000',
  HASH_QUEUE_TIMEOUT_MS: '600000',
  RATE_LIMIT_LOGIN_PER_IP: '1000000',
  RATE_LIMIT_LOGIN_FAILURES: '1000000',
  RATE_LIMIT_SIGNUP_PER_IP: '1000000',
  // In-process services share the test runner's event loop, which lags on a loaded CI machine;
  // test/overload.test.ts turns load shedding on itself.
  OVERLOAD_EVENT_LOOP_DELAY_MS: '0'
}
