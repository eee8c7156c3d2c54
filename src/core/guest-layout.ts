// Where things are inside every guest (sandbox and microVM alike): the one definition the host's drivers, the
// guest image, the agent and the in-guest commands read.

/** The share (the memory tier) as the guest sees it. */
export const GUEST_SHARE_DIR = '/mnt/hylics';
/** The agent's run dir: its sockets and the in-guest `hylics` command. */
export const GUEST_RUN_DIR = '/run/hylics';
/** The agent's channel socket (sandbox guests) and its socket for apps in the guest, in the run dir. */
export const GUEST_CHANNEL_SOCKET_NAME = 'channel.sock';
export const GUEST_APP_SOCKET_NAME = 'agent.sock';
export const GUEST_CHANNEL_SOCKET = `${GUEST_RUN_DIR}/${GUEST_CHANNEL_SOCKET_NAME}`;
export const GUEST_APP_SOCKET = `${GUEST_RUN_DIR}/${GUEST_APP_SOCKET_NAME}`;
/** Where the agent writes the in-guest `hylics` command (put on the PATH of what it runs). */
export const GUEST_BIN_DIR = `${GUEST_RUN_DIR}/bin`;
