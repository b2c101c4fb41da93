/**
 * Generators for the fuzzer's inputs: usernames, passwords, `data`, bearer headers, If-Match and
 * If-None-Match headers, merge patches, hostile path segments, body mutations and content types.
 * Everything big (64 KiB strings, 5000-deep nesting) or made from the model (ETags, patches of an
 * account's data) is described by a small value and built when the request is rendered, so
 * counterexamples stay readable and shrink fast.
 */
import fc from 'fast-check'
import type { Json, JsonObject } from './model.js'

export const PASSWORD = 'correct horse battery'
export const ADMIN = 'admin'

/** A few names, so sign-ups collide (case-insensitively) and admins act on real accounts. */
export const NAMES = [ADMIN, 'ben', 'carol', 'dave.d', '...', '_-_', 'X'.repeat(32)] as const

export type Recase = 'same' | 'upper' | 'lower' | 'swap'
export function recase(name: string, how: Recase): string {
  if (how === 'upper') return name.toUpperCase()
  if (how === 'lower') return name.toLowerCase()
  if (how === 'swap') return [...name].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join('')
  return name
}
const recaseArb = fc.constantFrom<Recase>('same', 'same', 'upper', 'lower', 'swap')

export const usernameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...NAMES), recaseArb).map(([name, how]) => recase(name, how)) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.-]{3,32}$/) }
)

/** Names the contract refuses, for bodies. */
export const badUsernameArb = fc.constantFrom(
  '',
  'ab',
  'x'.repeat(33),
  'bad name',
  'ben\n',
  'bén',
  '../ben',
  'ben%00',
  'ben\u0000',
  'ben/x',
  '<script>',
  ' ben',
  'ben ',
  'ǅemo',
  '🙂🙂🙂'
)

/** Valid passwords (8..72 UTF-8 bytes) and not (too short, too long in bytes but not characters, NUL inside). */
export const passwordArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constant(PASSWORD) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 2, maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 8, maxLength: 72 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'short',
      '1234567',
      '12345678',
      'p'.repeat(72),
      'p'.repeat(73),
      'é'.repeat(36),
      'é'.repeat(37),
      '🙂'.repeat(18),
      '🙂'.repeat(19),
      'nul\u0000inside!',
      '\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000',
      "' OR '1'='1",
      'pass word with spaces',
      '\t\n\r\u2028tabs'
    )
  }
)

// ---------------------------------------------------------------------------------------------
// JSON for `data`

export const keyArb = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'constructor',
      'prototype',
      'toString',
      'hasOwnProperty',
      'valueOf',
      '__defineGetter__',
      '__lookupSetter__',
      'admin',
      'id',
      '$ref',
      '',
      ' ',
      '"',
      '\\',
      'a.b',
      'a/b',
      'é',
      '🙂',
      'null',
      "'; DROP TABLE users; --",
      '\u0000',
      '\ud800'
    )
  }
)

const textArb = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      'a\u0000b',
      '\ud800',
      'x\udc00y',
      '\u2028\u2029',
      '\ufeff',
      'e\u0301',
      '🏳️‍🌈',
      '<script>alert(1)</script>',
      "' OR '1'='1",
      '%00',
      '../..',
      '\\u0000',
      'ü'.repeat(100)
    )
  }
)

const leafArb: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 2 ** 53, -(2 ** 53 - 1), 1e308, 5e-324, 0.1),
  textArb
)

export const { value: jsonArb } = fc.letrec<{ value: Json; array: Json[]; object: JsonObject }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leafArb, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(keyArb, tie('value'), { maxKeys: 4, noNullPrototype: true })
}))

/** `{"k":{"k":...}}` with `depth` levels of objects in all. */
export function nestedObject(depth: number): JsonObject {
  let data: JsonObject = {}
  for (let level = 1; level < depth; level++) data = { k: data }
  return data
}

/** Data near and past the limits: exactly 16 KiB and one byte more, 32 levels deep and 33. */
const boundaryDataArb = fc.oneof(
  fc.constantFrom(16_376, 16_377).map((n) => ({ s: 'x'.repeat(n) }) as JsonObject), // `{"s":"…"}` is n + 8 bytes
  fc.constantFrom(31, 32, 33).map(nestedObject)
)

export const dataArb: fc.Arbitrary<JsonObject> = fc.oneof(
  { weight: 8, arbitrary: fc.dictionary(keyArb, jsonArb, { maxKeys: 5, noNullPrototype: true }) },
  { weight: 1, arbitrary: boundaryDataArb }
)

// ---------------------------------------------------------------------------------------------
// Bearer headers

export type TokenShape =
  | 'exact'
  | 'lower-scheme'
  | 'upper-scheme'
  | 'spaces'
  | 'tabs-around'
  | 'truncated'
  | 'extended'
  | 'last-char'
  | 'no-scheme'
  | 'basic'
  | 'twice'
  | 'quoted'
  | 'comma'
  | 'tab-separated'
  | 'upper-token'

export type Credential =
  | { kind: 'none' }
  /** One of the sessions handed out so far (`live` prefers live ones): own, another user's, an admin's. */
  | { kind: 'session'; live: boolean; pick: number; shape: TokenShape }
  | { kind: 'header'; value: string }

const shapeArb = fc.oneof(
  { weight: 12, arbitrary: fc.constant<TokenShape>('exact') },
  {
    weight: 4,
    arbitrary: fc.constantFrom<TokenShape>(
      'lower-scheme',
      'upper-scheme',
      'spaces',
      'tabs-around',
      'truncated',
      'extended',
      'last-char',
      'no-scheme',
      'basic',
      'twice',
      'quoted',
      'comma',
      'tab-separated',
      'upper-token'
    )
  }
)

const garbageHeaderArb = fc.oneof(
  fc.constantFrom(
    '',
    'Bearer',
    'Bearer ',
    'Bearer null',
    'Bearer undefined',
    `Bearer ${'A'.repeat(43)}`,
    `Bearer ${'a'.repeat(5000)}`,
    'Basic YWRtaW46YWRtaW4=',
    'Token abc',
    'Bearer ../../etc/passwd',
    "Bearer ' OR 1=1 --",
    'Bearer %00',
    'Bearer\u00a0x',
    `Bearer ${'-'.repeat(43)}`
  ),
  fc
    .string({
      unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_ .=+/'.split('')),
      maxLength: 60
    })
    .map((s) => `Bearer ${s}`),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e\t]/g, '?'))
)

export const credentialArb: fc.Arbitrary<Credential> = fc.oneof(
  { weight: 2, arbitrary: fc.constant<Credential>({ kind: 'none' }) },
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('session' as const),
      live: fc.constantFrom(true, true, true, true, false),
      pick: fc.nat(),
      shape: shapeArb
    })
  },
  { weight: 2, arbitrary: garbageHeaderArb.map((value): Credential => ({ kind: 'header', value })) }
)

/** Mostly a live session's token as is, else any credential: for commands about something other than tokens. */
export const usableCredentialArb: fc.Arbitrary<Credential> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('session' as const),
      live: fc.constant(true),
      pick: fc.nat(),
      shape: fc.constant<TokenShape>('exact')
    })
  },
  { weight: 1, arbitrary: credentialArb }
)

/** The header a session token becomes. */
export function bearerHeader(token: string, shape: TokenShape): string {
  const other = token.endsWith('A') ? 'B' : 'A'
  switch (shape) {
    case 'exact':
      return `Bearer ${token}`
    case 'lower-scheme':
      return `bearer ${token}`
    case 'upper-scheme':
      return `BEARER ${token}`
    case 'spaces':
      return `Bearer    ${token}   `
    case 'tabs-around':
      return `\tBearer ${token}\t`
    case 'truncated':
      return `Bearer ${token.slice(0, 42)}`
    case 'extended':
      return `Bearer ${token}A`
    case 'last-char':
      return `Bearer ${token.slice(0, -1)}${other}`
    case 'no-scheme':
      return token
    case 'basic':
      return `Basic ${token}`
    case 'twice':
      return `Bearer ${token} ${token}`
    case 'quoted':
      return `Bearer "${token}"`
    case 'comma':
      return `Bearer ${token},`
    case 'tab-separated':
      return `Bearer\t${token}`
    case 'upper-token':
      return `Bearer ${token.toUpperCase()}`
  }
}

// ---------------------------------------------------------------------------------------------
// Preconditions: If-Match and If-None-Match

/** Spellings of a version that are not its ETag's (RFC 9110 strong comparison: no match). */
export type AliasForm = 'leading-zero' | 'plus' | 'decimal' | 'exponent'

/**
 * What an If-Match or If-None-Match header holds, resolved against the model when the request is
 * built (commands.ts): the target's ETag as it is now, an older (or a future) version of it, `*`,
 * the weak form, another account's, any ETag seen in the run, a list, the version spelt otherwise,
 * or a literal header (malformed, or well-formed oddities such as `""` and `"*"`).
 */
export type Condition =
  | { kind: 'current' }
  | { kind: 'any' }
  | { kind: 'stale'; back: number }
  | { kind: 'weak' }
  | { kind: 'other'; pick: number }
  | { kind: 'seen'; pick: number }
  | { kind: 'list'; current: boolean; weakCurrent: boolean; pick: number }
  | { kind: 'alias'; form: AliasForm }
  | { kind: 'header'; value: string }

export const conditionArb: fc.Arbitrary<Condition> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Condition>({ kind: 'current' }) },
  { weight: 2, arbitrary: fc.constant<Condition>({ kind: 'any' }) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('stale' as const), back: fc.constantFrom(1, 1, 2, -1) })
  },
  { weight: 2, arbitrary: fc.constant<Condition>({ kind: 'weak' }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('other' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('seen' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('list' as const),
      current: fc.boolean(),
      weakCurrent: fc.boolean(),
      pick: fc.nat()
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('alias' as const),
      form: fc.constantFrom<AliasForm>('leading-zero', 'plus', 'decimal', 'exponent')
    })
  },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(
        '',
        ' ',
        ',',
        ' , ,',
        '**',
        ' * ',
        'W/*',
        '"*"',
        '""',
        '1-AAAA',
        '"1-AAAA',
        '1-AAAA"',
        'w/"1-AAAA"',
        'W/ "1-AAAA"',
        '"1-AAAA" "2-AAAA"',
        '"1-AAAA";"2-AAAA"',
        '*, "1-AAAA"',
        '"1-AAAA", *',
        '"a b"',
        '"a"b"',
        "'1-AAAA'",
        '"1-AAAA",,',
        `"1-AAAA", ${'"2-AAAA", '.repeat(110)}"3-AAAA"`,
        'x'.repeat(1025)
      )
      .map((value): Condition => ({ kind: 'header', value }))
  }
)

// ---------------------------------------------------------------------------------------------
// Merge patches (RFC 7396), built from the target's data when the request is sent

/**
 * One edit of a merge patch, at the object reached by following `path` down the target's data
 * (each number picks one of the keys holding an object, as deep as there are such keys). An edit of
 * an existing key (`pick`) in an empty object sets a fresh one instead, except `remove` and `keep`.
 */
export type PatchEdit =
  | { kind: 'remove'; pick: number }
  | { kind: 'remove-absent'; key: string }
  | { kind: 'set'; key: string; value: Json }
  | { kind: 'replace'; pick: number; value: Json }
  /** An existing key with the value it has: a patch of only these changes nothing. */
  | { kind: 'keep'; pick: number }
  | { kind: 'array'; pick: number; items: Json[] }
  /** Top level: a `pad` string sized so the merged data is `bytes` long as JSON. */
  | { kind: 'fill'; bytes: number }
  /** Top level: objects nested under `deep` so the merged data is `levels` deep. */
  | { kind: 'deepen'; levels: number }

export interface PatchStep {
  path: number[]
  edit: PatchEdit
}

const patchEditArb: fc.Arbitrary<PatchEdit> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove-absent' as const), key: keyArb }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('set' as const), key: keyArb, value: jsonArb }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('replace' as const), pick: fc.nat(), value: jsonArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('keep' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('array' as const),
      pick: fc.nat(),
      items: fc.array(jsonArb, { maxLength: 3 })
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('fill' as const),
      bytes: fc.constantFrom(8_000, 16_383, 16_384, 16_384, 16_385)
    })
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deepen' as const), levels: fc.constantFrom(31, 32, 33) }) }
)

export const patchArb: fc.Arbitrary<PatchStep[]> = fc.array(
  fc.record({ path: fc.array(fc.nat(), { maxLength: 3 }), edit: patchEditArb }),
  { minLength: 1, maxLength: 4 }
)

/** The body around the patch: as the contract has it, or a near miss (400, or `{}` which changes nothing). */
export type PatchEnvelope =
  | 'data'
  | 'empty'
  | 'extra-admin'
  | 'extra-username'
  | 'data-null'
  | 'data-array'
  | 'unwrapped'
  | 'json-patch'
  | 'null'

export const patchEnvelopeArb: fc.Arbitrary<PatchEnvelope> = fc.oneof(
  { weight: 16, arbitrary: fc.constant<PatchEnvelope>('data') },
  {
    weight: 4,
    arbitrary: fc.constantFrom<PatchEnvelope>(
      'empty',
      'extra-admin',
      'extra-username',
      'data-null',
      'data-array',
      'unwrapped',
      'json-patch',
      'null'
    )
  }
)

/** PATCH's own media type in its spellings, now and then a JSON or form one (415). */
export const mergePatchTypeArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: fc.constant('application/merge-patch+json') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'application/merge-patch+json; charset=utf-8',
      'Application/Merge-Patch+JSON',
      ' application/merge-patch+json '
    )
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'application/json',
      'application/x-www-form-urlencoded',
      'application/merge-patch',
      'application/json-patch+json'
    )
  }
)

// ---------------------------------------------------------------------------------------------
// Path segments naming a user

const segmentPieceArb = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.-]{1,6}$/) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '%00',
      '%2F',
      '%2f',
      '%5C',
      '%20',
      '%25',
      '%2e',
      '%2E%2E',
      '%61',
      '%5F',
      '%2D',
      '%C3%A9',
      '%F0%9F%98%80',
      '%E2%80%AE',
      '%EF%BB%BF',
      '%C0%AE',
      '%zz',
      '%',
      '%E0%A4%A',
      '..',
      '.',
      ';',
      '+',
      ':',
      '@',
      '!',
      '$',
      '&',
      "'",
      '(',
      ')',
      '*',
      ',',
      '=',
      '~',
      '\\',
      '"',
      '<',
      '>',
      '{',
      '}',
      '|',
      '^',
      '`',
      '[',
      ']',
      '\x7f',
      '\xe9',
      '\xff',
      'é'
    )
  }
)

export const segmentArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.array(segmentPieceArb, { minLength: 1, maxLength: 4 }).map((pieces) => pieces.join('')) },
  // A real name, percent-encoded in part: a legitimate way to name that very account.
  {
    weight: 2,
    arbitrary: fc.tuple(fc.constantFrom(...NAMES), recaseArb, fc.nat()).map(([name, how, at]) => {
      const chars = [...recase(name, how)]
      const i = at % chars.length
      chars[i] = `%${chars[i]!.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`
      return chars.join('')
    })
  },
  // A real name with something hostile around it: must never reach that account.
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...NAMES),
        fc.constantFrom('%00', '..', '%2F..%2Fadmin', '%2F', '%20', ';x', '%3B', '\\', '%0A', '%C3%A9', '*', '%2A')
      )
      .chain(([name, junk]) => fc.constantFrom(`${name}${junk}`, `${junk}${name}`))
  },
  { weight: 1, arbitrary: fc.constantFrom(33, 96, 100, 101, 2_000, 12_000, 20_000).map((n) => 'a'.repeat(n)) }
)

// ---------------------------------------------------------------------------------------------
// Bodies

export type Mutation =
  | { kind: 'none' }
  | { kind: 'drop'; field: string }
  /** Replace or add a field (wrong types, invalid values, extra fields such as `admin`). */
  | { kind: 'set'; field: string; value: Json }
  | { kind: 'huge'; field: string; length: number }
  /** A value written as raw JSON text, inside `data` or in place of a field: numbers past a double, escapes. */
  | { kind: 'raw'; inData: boolean; field: string; text: string }
  | { kind: 'deep'; field: string; depth: number; shape: 'array' | 'object' }
  /** The key twice in the raw text; JSON.parse keeps the last. */
  | { kind: 'duplicate'; field: string; value: Json; first: boolean }
  | {
      kind: 'proto'
      inData: boolean
      variant: 'proto' | 'escaped-proto' | 'constructor.prototype' | 'constructor' | 'prototype'
    }
  | { kind: 'truncate'; fraction: number }
  | { kind: 'bom' }
  | { kind: 'replace'; text: string }
  | { kind: 'bytes'; bytes: number[] }

const FIELDS = ['username', 'password', 'data', 'admin', 'id', 'createdAt', 'role', 'isAdmin', '', 'data ']

const wrongValueArb: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    null,
    true,
    false,
    0,
    -1,
    1e21,
    12345678,
    '',
    [],
    {},
    [PASSWORD],
    { username: 'ben' },
    'true',
    'null'
  ),
  badUsernameArb,
  jsonArb
)

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Mutation>({ kind: 'none' }) },
  { weight: 2, arbitrary: fc.constantFrom(...FIELDS).map((field): Mutation => ({ kind: 'drop', field })) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('set' as const), field: fc.constantFrom(...FIELDS), value: wrongValueArb })
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('huge' as const),
      field: fc.constantFrom('username', 'password', 'data', 'extra'),
      length: fc.constantFrom(100, 1_000, 16_000, 16_400, 65_000, 70_000, 200_000)
    })
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('raw' as const),
      inData: fc.boolean(),
      field: fc.constantFrom('username', 'password', 'v'),
      text: fc.constantFrom(
        '1e400',
        '-1e400',
        '1e-400',
        '123456789012345678901234567890',
        '-0',
        '0.1e1',
        '1E+2',
        '"\\ud800"',
        '"\\udc00\\ud800"',
        '"\\u0000"',
        '"\\uD83D\\uDE00"',
        '"\\u00e9"',
        '"a\\/b"',
        '"\\"\\\\"',
        '[1,2,3]',
        '{"":{}}'
      )
    })
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('deep' as const),
      field: fc.constantFrom('username', 'data', 'password'),
      depth: fc.constantFrom(31, 32, 33, 100, 5_000, 30_000),
      shape: fc.constantFrom('array' as const, 'object' as const)
    })
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('duplicate' as const),
      field: fc.constantFrom('username', 'password', 'data', 'admin'),
      value: fc.oneof(fc.constantFrom<Json>('ben', ADMIN, 'Admin', PASSWORD, 'x', true, {}, { admin: true }), jsonArb),
      first: fc.boolean()
    })
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('proto' as const),
      inData: fc.boolean(),
      variant: fc.constantFrom(
        'proto' as const,
        'escaped-proto' as const,
        'constructor.prototype' as const,
        'constructor' as const,
        'prototype' as const
      )
    })
  },
  {
    weight: 1,
    arbitrary: fc.double({ min: 0, max: 1, noNaN: true }).map((fraction): Mutation => ({ kind: 'truncate', fraction }))
  },
  { weight: 1, arbitrary: fc.constant<Mutation>({ kind: 'bom' }) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.constantFrom(
          '',
          ' ',
          '\n\t ',
          'null',
          'true',
          '0',
          '"ben"',
          '[]',
          '[{"username":"ben"}]',
          '{',
          '}',
          '{"username":}',
          '{,}',
          "{'a':1}",
          '{"a":1}x',
          '/* c */ {}',
          '{"a":1,}',
          'NaN',
          '1e999',
          '\u0000',
          `{"username":"ben","password":"${PASSWORD}"`,
          'username=ben&password=x'
        ),
        fc.string({ maxLength: 40 }),
        fc.json({ maxDepth: 3 })
      )
      .map((text): Mutation => ({ kind: 'replace', text }))
  },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 })
      .map((bytes): Mutation => ({ kind: 'bytes', bytes }))
  }
)

/** Content types: JSON (as is and in other spellings), forms, and what the service must refuse. */
export const contentTypeArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 10, arbitrary: fc.constant('application/json') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'Application/JSON',
      'application/json;charset=UTF-8',
      ' application/json '
    )
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8')
  },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'text/plain',
      'text/plain; charset=utf-8',
      'multipart/form-data; boundary=fuzzboundary',
      'application/octet-stream',
      'application/xml',
      'text/html',
      'application/problem+json',
      'application/vnd.api+json',
      'application/jsonx',
      'application/json-seq',
      'application/merge-patch+json',
      '*/*',
      'json',
      '',
      'application',
      'text/json',
      'application/x-www-form-urlencodedx'
    )
  },
  { weight: 2, arbitrary: fc.constant(undefined) }
)

/** A JSON object text from raw `"key": value` pairs. */
function objectText(entries: Array<[string, string]>): string {
  return `{${entries.map(([key, value]) => `${key}:${value}`).join(',')}}`
}

function deepText(depth: number, shape: 'array' | 'object'): string {
  return shape === 'array'
    ? `${'['.repeat(depth)}0${']'.repeat(depth)}`
    : `${'{"k":'.repeat(depth)}0${'}'.repeat(depth)}`
}

const PROTO_ENTRIES: Record<Extract<Mutation, { kind: 'proto' }>['variant'], [string, string]> = {
  proto: ['"__proto__"', '{"admin":true}'],
  'escaped-proto': ['"\\u005f_proto__"', '{"admin":true}'],
  'constructor.prototype': ['"constructor"', '{"prototype":{"admin":true}}'],
  constructor: ['"constructor"', '"x"'],
  prototype: ['"prototype"', '{"admin":true}']
}

/** The body bytes for a base body (a valid one for the operation), mutated, in the given media type. */
export function renderBody(base: Record<string, Json>, mutation: Mutation, contentType: string | undefined): Buffer {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase()
  if (mutation.kind === 'bytes') return Buffer.from(mutation.bytes)
  if (
    mediaType === 'application/x-www-form-urlencoded' &&
    ['none', 'drop', 'set', 'duplicate'].includes(mutation.kind)
  ) {
    return Buffer.from(formText(base, mutation))
  }
  if (mediaType?.startsWith('multipart/')) return Buffer.from(multipartText(base))
  return Buffer.from(jsonText(base, mutation))
}

function jsonText(base: Record<string, Json>, mutation: Mutation): string {
  const entries = new Map(Object.entries(base).map(([key, value]): [string, string] => [key, JSON.stringify(value)]))
  const raw = () => objectText([...entries].map(([key, value]) => [JSON.stringify(key), value]))
  switch (mutation.kind) {
    case 'none':
      return raw()
    case 'drop':
      entries.delete(mutation.field)
      return raw()
    case 'set':
      entries.set(mutation.field, JSON.stringify(mutation.value))
      return raw()
    case 'huge': {
      const blob = JSON.stringify('x'.repeat(mutation.length))
      entries.set(mutation.field, mutation.field === 'data' ? `{"blob":${blob}}` : blob)
      return raw()
    }
    case 'raw': {
      if (!mutation.inData) {
        entries.set(mutation.field, mutation.text)
        return raw()
      }
      const data = entries.get('data')
      const inner =
        data?.startsWith('{') && data !== '{}' ? `${data.slice(0, -1)},"v":${mutation.text}}` : `{"v":${mutation.text}}`
      entries.set('data', inner)
      return raw()
    }
    case 'deep':
      entries.set(
        mutation.field,
        mutation.field === 'data'
          ? `{"k":${deepText(mutation.depth - 1, mutation.shape)}}`
          : deepText(mutation.depth, mutation.shape)
      )
      return raw()
    case 'duplicate': {
      const pairs = [...entries].map(([key, value]): [string, string] => [JSON.stringify(key), value])
      const dup: [string, string] = [JSON.stringify(mutation.field), JSON.stringify(mutation.value)]
      return objectText(mutation.first ? [dup, ...pairs] : [...pairs, dup])
    }
    case 'proto': {
      const [key, value] = PROTO_ENTRIES[mutation.variant]
      const pairs = [...entries].map(([k, v]): [string, string] => [JSON.stringify(k), v])
      if (!mutation.inData) return objectText([...pairs, [key, value]])
      const data = entries.get('data')
      const inner =
        data?.startsWith('{') && data !== '{}' ? `${data.slice(0, -1)},${key}:${value}}` : `{${key}:${value}}`
      return objectText([...pairs.filter(([k]) => k !== '"data"'), ['"data"', inner]])
    }
    case 'truncate': {
      const text = raw()
      return text.slice(0, Math.floor(text.length * mutation.fraction))
    }
    case 'bom':
      return `\ufeff${raw()}`
    case 'replace':
      return mutation.text
    case 'bytes':
      return Buffer.from(mutation.bytes).toString('latin1')
  }
}

function formText(base: Record<string, Json>, mutation: Mutation): string {
  const asText = (value: Json) => (typeof value === 'string' ? value : JSON.stringify(value))
  const pairs: Array<[string, string]> = Object.entries(base).map(([key, value]) => [key, asText(value)])
  const params = new URLSearchParams()
  const without = mutation.kind === 'drop' || mutation.kind === 'set' ? mutation.field : undefined
  if (mutation.kind === 'duplicate' && mutation.first) params.append(mutation.field, asText(mutation.value))
  for (const [key, value] of pairs) if (key !== without) params.append(key, value)
  if (mutation.kind === 'set') params.append(mutation.field, asText(mutation.value))
  if (mutation.kind === 'duplicate' && !mutation.first) params.append(mutation.field, asText(mutation.value))
  return params.toString()
}

function multipartText(base: Record<string, Json>): string {
  const parts = Object.entries(base).map(
    ([key, value]) =>
      `--fuzzboundary\r\nContent-Disposition: form-data; name="${key}"\r\n\r\n${typeof value === 'string' ? value : JSON.stringify(value)}\r\n`
  )
  return `${parts.join('')}--fuzzboundary--\r\n`
}
