// Starts the real ElizaOS 1.7.2 server (npm @elizaos/server) with its embedded PGlite database,
// no agents, no LLM: the messaging hub only. Own starter for bench/compare.sh; run it from the
// directory where @elizaos/server is installed (compare.sh copies it there).
//   SERVER_PORT (default 3000), PGLITE_DATA_DIR (default ./.eliza-data/pglite)
// Prints "ELIZA_READY port=<port> pid=<pid>" once listening.
import { AgentServer } from '@elizaos/server';

const port = parseInt(process.env.SERVER_PORT || '3000', 10);
const dataDir = process.env.PGLITE_DATA_DIR || './.eliza-data/pglite';
const server = new AgentServer();
const t0 = Date.now();
await server.start({ dataDir, port });
console.log(`ELIZA_READY port=${port} pid=${process.pid} messageServerId=${server.messageServerId} startup_ms=${Date.now() - t0}`);
