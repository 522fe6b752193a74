// Plain socket.io 4.x peer for `bench/compare.sh`: the ElizaOS messaging hot path with no
// storage, no agents. Own code.
//   connect with auth.entityId (not checked)      -> `connection_established`
//   message {type:1, payload:{channelId|roomId}}  -> socket.join(channel); `channel_joined` (sender only)
//   message {type:2, payload:{channelId|roomId, senderId, senderName, message, messageId, ...}}
//     -> `messageBroadcast` to the room except the sender (socket.to(room)),
//        the sender's own copy with `clientMessageId`, then `messageAck` — as ElizaOS 1.7.2 and
//        confab do, so the load generator expects the same receipts from all three servers.
// Usage: PORT=3300 HOST=127.0.0.1 node server.js   (prints "node-peer listening on http://HOST:PORT")
'use strict';
const http = require('http');
const { randomUUID } = require('crypto');
const { Server } = require('socket.io');

const PORT = parseInt(process.env.PORT || '3300', 10);
const HOST = process.env.HOST || '127.0.0.1';

const httpServer = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', connections: io.engine.clientsCount }));
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end('{"success":false,"error":"not found"}');
});

// ElizaOS's settings (compat §1.1): 1 MB packets, no compression, default ping timings.
const io = new Server(httpServer, {
  cors: { origin: '*' },
  maxHttpBufferSize: 1e6,
  perMessageDeflate: false,
});

io.on('connection', (socket) => {
  socket.emit('connection_established', { message: 'Connected', socketId: socket.id });
  socket.on('message', (data) => {
    if (!data || typeof data !== 'object') return;
    const p = data.payload || {};
    const channelId = p.channelId || p.roomId;
    if (!channelId) {
      socket.emit('messageError', { error: 'channelId is required' });
      return;
    }
    if (data.type === 1) {
      socket.join(channelId);
      socket.emit('channel_joined', { channelId, roomId: channelId });
    } else if (data.type === 2) {
      if (!p.senderId || typeof p.message !== 'string' || !p.message) {
        socket.emit('messageError', { error: 'senderId and message required', clientMessageId: p.messageId });
        return;
      }
      const id = randomUUID();
      const msg = {
        id,
        senderId: p.senderId,
        senderName: p.senderName || 'User',
        text: p.message,
        channelId,
        roomId: channelId,
        messageServerId: p.messageServerId,
        createdAt: Date.now(),
        source: p.source || 'socketio_client',
      };
      socket.to(channelId).emit('messageBroadcast', msg);
      socket.emit('messageBroadcast', { ...msg, clientMessageId: p.messageId });
      socket.emit('messageAck', {
        clientMessageId: p.messageId, messageId: id, status: 'received_by_server_and_processing',
        channelId, roomId: channelId,
      });
    }
  });
});

httpServer.listen(PORT, HOST, () => {
  console.log(`node-peer listening on http://${HOST}:${httpServer.address().port} pid=${process.pid}`);
});

const shutdown = () => { io.close(); httpServer.close(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); };
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
