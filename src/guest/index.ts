// Guest frontend: the library apps use (connect, track) and the agent (for embedding, e.g. the CLI in a guest).
export { AgentClient, connect, track, droppedReports, defaultAgentSocket, type ConnectOptions, type TrackOptions } from './lib.js';
export { Agent, AGENT_SOFTWARE, DEFAULT_APP_SOCKET, DEFAULT_CHANNEL_PORT, DEFAULT_CHANNEL_SOCKET, DEFAULT_SHARE_DIR, type AgentOptions, type AgentChannel } from './agent.js';
export { tier, localStore, tierDirs, type TierPath, type TierPathOptions } from './tier-lib.js';
export { TierStore, type TierEntry, type Tier } from './tier/store.js';
export { hylicsSendfile, hylicsSend, lastFallback, type OffloadOptions, type SendfileResult } from './offload.js';
