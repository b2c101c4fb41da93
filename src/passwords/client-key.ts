/**
 * Whom a share of the hash pool belongs to: one IPv4 address, or one IPv6 /64. A single IPv6
 * host is usually handed a whole /64, so counting its addresses one by one would let it take as
 * many shares as it likes; an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is its IPv4 address.
 */
import { isIPv4, isIPv6 } from 'node:net'

/** The eight 16-bit groups of a valid IPv6 address (with or without `::` and a dotted IPv4 tail). */
function groupsOf(address: string): number[] {
  const parse = (part: string) =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [Number.parseInt(group, 16)]
          const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number]
          return [(a << 8) | b, (c << 8) | d]
        })
  const gap = address.indexOf('::')
  if (gap < 0) return parse(address)
  const head = parse(address.slice(0, gap))
  const tail = parse(address.slice(gap + 2))
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
}

/** `203.0.113.7` -> itself; `2001:db8:a:b::1` -> `2001:db8:a:b::/64`; `::ffff:203.0.113.7` -> `203.0.113.7`. */
export function clientKeyOf(ip: string | undefined): string {
  const address = (ip ?? '').split('%')[0]! // a zone (fe80::1%eth0) names our interface, not the client
  if (isIPv4(address) || !isIPv6(address)) return address
  const groups = groupsOf(address)
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.')
  }
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`
}
