// The guest address plan (docs/design.md "Address plan"): everything of a guest's network is derived from one
// small index i, unused by this daemon and by anything on the host: host link hyh<i> with 10.213.i.1/24, guest
// link hyg<i> with 10.213.i.2 (a routed /32 on the tap for microVMs), network namespace hylics-<i>-<name>.
import { HylicsError } from '../core/errors/index.js';
import { GUEST_LINK_PREFIX } from '../os/nft-guard.js';
import { hostLinkPresent } from '../os/netns.js';
import type { GuestNetwork } from './drivers/types.js';

/** The first two octets of every guest's /24. */
export const GUEST_NET_BASE = '10.213';
/** The prefix length of a guest's network (host and guest address). */
export const GUEST_NET_PREFIX_LEN = 24;
/** Indexes 1..MAX_GUESTS: at most this many guests per host (all daemons together). */
export const MAX_GUESTS = 250;
/** Guest-side link names are this prefix and the index (the host side's is GUEST_LINK_PREFIX). */
const GUEST_SIDE_LINK_PREFIX = 'hyg';
/** Network namespace names are cut to this many characters. */
const NETNS_NAME_MAX = 48;

/** Guest `name`'s network at index `i`. */
export function guestNetwork(i: number, name: string): GuestNetwork {
  return {
    index: i,
    hostIf: `${GUEST_LINK_PREFIX}${i}`,
    guestIf: `${GUEST_SIDE_LINK_PREFIX}${i}`,
    hostAddr: `${GUEST_NET_BASE}.${i}.1`,
    guestAddr: `${GUEST_NET_BASE}.${i}.2`,
    prefixLen: GUEST_NET_PREFIX_LEN,
    netns: `hylics-${i}-${name}`.slice(0, NETNS_NAME_MAX),
  };
}

/**
 * The first index this daemon does not use (`used`), whose host link does not exist (another daemon's running
 * guest) and that `claim` takes for `name` (another daemon's stopped guest holds its claim, ./net-claims.ts).
 */
export function allocateGuestNetwork(
  name: string,
  used: ReadonlySet<number>,
  claim: (i: number) => boolean,
): GuestNetwork {
  for (let i = 1; i <= MAX_GUESTS; i++) {
    if (used.has(i) || hostLinkPresent(`${GUEST_LINK_PREFIX}${i}`) || !claim(i)) continue;
    return guestNetwork(i, name);
  }
  throw new HylicsError('HYLICS_ERR_CONFLICT', `no free guest network slot (at most ${MAX_GUESTS} guests per host)`);
}
