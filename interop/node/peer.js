#!/usr/bin/env node
// Node `ws` as an interop peer (same checklist and JSON lines as python/peer.py).
//   node peer.js client --url ws://127.0.0.1:P/websocket
//   node peer.js server --port P
'use strict';
const WebSocket = require('ws');
const PEER = 'node-ws ' + require('ws/package.json').version;
const SIZES = [0, 5, 64 * 1024, 16 << 20];
let failures = 0;

function report(check, ok, detail = '') {
  if (!ok) failures++;
  console.log(JSON.stringify({ peer: PEER, check, ok: !!ok, detail: String(detail).slice(0, 300) }));
}

function payload(kind, n) {
  if (kind === 'text') {
    const unit = 'κόσμε-abc ';
    let s = unit.repeat(Math.ceil(n / Buffer.byteLength(unit)) + 1);
    let b = Buffer.from(s).subarray(0, n);
    return b.toString('utf8').replace(/\uFFFD+$/, '');
  }
  const b = Buffer.alloc(n);
  for (let i = 0; i < Math.min(n, 1 << 20); i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

// A queue of incoming messages with timeouts.
function inbox(ws) {
  const q = [], waiters = [];
  ws.on('message', (data, isBinary) => {
    const m = isBinary ? data : data.toString('utf8');
    if (waiters.length) waiters.shift()(m); else q.push(m);
  });
  return (ms = 30000) => new Promise((res, rej) => {
    if (q.length) return res(q.shift());
    const t = setTimeout(() => rej(new Error('timeout')), ms);
    waiters.push(m => { clearTimeout(t); res(m); });
  });
}

function same(a, b) {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return Buffer.compare(a, b) === 0;
}

async function client(url, expectExtension) {
  const ws = new WebSocket(url, { maxPayload: 0 });
  const recv = inbox(ws);
  let upgradeExtensions;
  ws.once('upgrade', res => { upgradeExtensions = res.headers['sec-websocket-extensions']; });
  await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
  if (expectExtension !== undefined) {
    report(`negotiated ${expectExtension}`, typeof upgradeExtensions === 'string' && upgradeExtensions.startsWith(expectExtension),
      `Sec-WebSocket-Extensions: ${upgradeExtensions}`);
  }
  for (const kind of ['text', 'binary']) {
    for (const n of SIZES) {
      const data = payload(kind, n);
      try {
        ws.send(data, { binary: kind === 'binary' });
        const echo = await recv();
        const dots = await recv();
        report(`echo ${kind} ${n}B`, same(echo, data) && String(dots) === '..........', `dots=${String(dots)}`);
      } catch (e) { report(`echo ${kind} ${n}B`, false, e); }
    }
  }
  for (const kind of ['text', 'binary']) {
    const parts = [payload(kind, 1000), payload(kind, 1), payload(kind, 70000)];
    const whole = kind === 'text' ? parts.join('') : Buffer.concat(parts);
    try {
      parts.forEach((p, i) => ws.send(p, { binary: kind === 'binary', fin: i === parts.length - 1 }));
      const echo = await recv();
      await recv();
      report(`echo fragmented ${kind}`, same(echo, whole), `${echo.length} back`);
    } catch (e) { report(`echo fragmented ${kind}`, false, e); }
  }
  try {
    const got = new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('no pong')), 5000);
      ws.once('pong', d => { clearTimeout(t); res(d); });
    });
    ws.ping('node-ping');
    const d = await got;
    report('our ping answered by the server', d.toString() === 'node-ping', d.toString());
  } catch (e) { report('our ping answered by the server', false, e); }
  let pings = 0;
  ws.on('ping', () => pings++);
  await new Promise(r => setTimeout(r, 1500));
  try {
    ws.send('still here');
    const echo = await recv(5000);
    await recv(5000);
    report('server heartbeat pings answered (idle 1.5 s)', echo === 'still here', `${pings} pings seen`);
  } catch (e) { report('server heartbeat pings answered (idle 1.5 s)', false, e); }
  const closed = new Promise(res => ws.once('close', (code, reason) => res([code, reason.toString()])));
  ws.close(1000, 'bye');
  const [code] = await closed;
  report('clean close 1000, server replied', code === 1000, `close event code ${code}`);
}

function server(port, cert, key) {
  const opts = {
    maxPayload: 0,
    handleProtocols: (protocols) => (protocols.has('chat.v1') ? 'chat.v1' : false),
  };
  let wss;
  if (cert) {
    // wss://: an https server carries the upgrades.
    const https = require('https');
    const fs = require('fs');
    const srv = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
    wss = new WebSocket.Server({ server: srv, ...opts });
    srv.listen(port, '127.0.0.1');
  } else {
    wss = new WebSocket.Server({ host: '127.0.0.1', port, ...opts });
  }
  wss.on('connection', (ws, req) => {
    if (req.url.startsWith('/close')) { ws.close(4001, 'custom reason'); return; }
    if (req.url.startsWith('/ping')) {
      const t = setTimeout(() => ws.send('pong-missing'), 3000);
      ws.once('pong', d => { clearTimeout(t); ws.send(d.toString() === 'hello-ping' ? 'pong-ok' : 'pong-missing'); });
      ws.ping('hello-ping');
    }
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  wss.on('listening', () => console.log(JSON.stringify({ peer: PEER, listening: port })));
}

const args = process.argv.slice(2);
const opt = k => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
if (args[0] === 'client') {
  client(opt('--url'), opt('--expect-extension')).then(() => process.exit(failures ? 1 : 0), e => { report('client', false, e); process.exit(1); });
} else {
  server(Number(opt('--port')), opt('--cert'), opt('--key'));
}
