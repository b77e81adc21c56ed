#!/usr/bin/env node
// Headless Chromium (Debian's, driven by playwright-core) as an interop peer: the
// browser's own WebSocket against examples/echo, examples/push and examples/ticker.
//   node browser.js echo   --base http://127.0.0.1:P
//   node browser.js push   --base http://127.0.0.1:P
//   node browser.js ticker --base http://127.0.0.1:P
'use strict';
const { chromium } = require('playwright-core');
let failures = 0;
let PEER = 'chromium';

function report(check, ok, detail = '') {
  if (!ok) failures++;
  console.log(JSON.stringify({ peer: PEER, check, ok: !!ok, detail: String(detail).slice(0, 300) }));
}

async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  PEER = 'chromium ' + browser.version();
  return browser;
}

// Runs in the page: opens a socket and keeps a message log the test can poll.
const PAGE_SETUP = `
  window.openSocket = (url) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    window.ws = ws; window.msgs = []; window.closeInfo = null;
    ws.onmessage = e => window.msgs.push({ t: performance.now(), data: e.data });
    ws.onclose = e => { window.closeInfo = { code: e.code, reason: e.reason, clean: e.wasClean }; };
    ws.onopen = () => resolve(true);
    ws.onerror = () => reject(new Error('error'));
  });
  window.next = (ms) => new Promise((resolve, reject) => {
    const deadline = performance.now() + ms;
    (function poll() {
      if (window.msgs.length) return resolve(window.msgs.shift());
      if (performance.now() > deadline) return reject(new Error('timeout'));
      setTimeout(poll, 2);
    })();
  });
`;

async function echo(base) {
  const browser = await launch();
  // https:// bases run against a self-signed certificate made for this run.
  const page = await (await browser.newContext({ ignoreHTTPSErrors: base.startsWith('https:') })).newPage();
  await page.goto(base + '/');
  report('test page served by the example', (await page.title()) === 'silverback test page', await page.title());
  await page.evaluate(PAGE_SETUP);
  await page.evaluate(u => window.openSocket(u), base.replace('http', 'ws') + '/websocket');
  const results = await page.evaluate(async () => {
    const out = [];
    const text = n => { const u = 'κόσμε-abc '; const k = Math.ceil(n / new TextEncoder().encode(u).length) + 1;
      const b = new TextEncoder().encode(u.repeat(k)).subarray(0, n);
      return new TextDecoder().decode(b).replace(/\uFFFD+$/, ''); };
    const bin = n => { const b = new Uint8Array(n); for (let i = 0; i < Math.min(n, 1 << 20); i++) b[i] = (i * 31 + 7) & 255; return b.buffer; };
    const eq = (a, b) => { if (typeof a === 'string' || typeof b === 'string') return a === b;
      const x = new Uint8Array(a), y = new Uint8Array(b); if (x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false; return true; };
    for (const kind of ['text', 'binary']) {
      for (const n of [0, 5, 65536, 16 << 20]) {
        const data = kind === 'text' ? text(n) : bin(n);
        window.ws.send(data);
        try {
          const e = await window.next(30000), d = await window.next(30000);
          const dots = typeof d.data === 'string' ? d.data : new TextDecoder().decode(d.data);
          out.push([`echo ${kind} ${n}B`, eq(e.data, data) && dots === '..........', `dots=${dots}`]);
        } catch (err) { out.push([`echo ${kind} ${n}B`, false, String(err)]); }
      }
    }
    // Idle through the server's heartbeat: the browser answers pings itself.
    await new Promise(r => setTimeout(r, 1500));
    window.ws.send('still here');
    try {
      const e = await window.next(5000); await window.next(5000);
      out.push(['server heartbeat pings answered (idle 1.5 s)', e.data === 'still here', e.data]);
    } catch (err) { out.push(['server heartbeat pings answered (idle 1.5 s)', false, String(err)]); }
    window.ws.close(1000, 'bye');
    for (let i = 0; i < 500 && !window.closeInfo; i++) await new Promise(r => setTimeout(r, 10));
    const c = window.closeInfo;
    out.push(['clean close 1000, server replied', !!c && c.code === 1000 && c.clean, JSON.stringify(c)]);
    return out;
  });
  for (const [c, ok, d] of results) report(c, ok, d);
  await browser.close();
}

async function push(base) {
  const browser = await launch();
  const ctx = await browser.newContext();
  const pages = {};
  for (const user of ['alice', 'bob']) {
    const p = await ctx.newPage();
    await p.goto(base + '/');
    await p.evaluate(PAGE_SETUP);
    await p.evaluate(u => window.openSocket(u), `${base.replace('http', 'ws')}/getPushNews?userId=${user}`);
    pages[user] = p;
  }
  // Both registered?
  for (let i = 0; i < 100; i++) {
    const list = await (await fetch(base + '/clients')).text();
    if (list.includes('alice') && list.includes('bob')) break;
    await new Promise(r => setTimeout(r, 20));
  }
  const body = JSON.stringify({ title: 'for alice', n: 1 });
  const r = await fetch(`${base}/push?userId=alice`, { method: 'POST', body });
  report('HTTP push endpoint answers 200', r.status === 200, await r.text());
  const got = await pages.alice.evaluate(() => window.next(5000).then(m => m.data, e => String(e)));
  let parsed = null;
  try { parsed = JSON.parse(got); } catch (e) { /* reported below */ }
  report('page receives the pushed JSON as it was posted', !!parsed && parsed.title === 'for alice', got);
  await new Promise(r => setTimeout(r, 500));
  const bobMsgs = await pages.bob.evaluate(() => window.msgs.length);
  report("a page for another user receives nothing meant for the first", bobMsgs === 0, `${bobMsgs} messages`);
  const d = await fetch(`${base}/deleteClient/alice`);
  report('delete endpoint answers 200', d.status === 200, await d.text());
  let closed = null;
  for (let i = 0; i < 300 && !closed; i++) {
    closed = await pages.alice.evaluate(() => window.closeInfo);
    if (!closed) await new Promise(r => setTimeout(r, 10));
  }
  report('deleted page sees the close event with our code', !!closed && closed.code === 1000 && closed.reason === 'deleted by server',
         JSON.stringify(closed));
  const bobClosed = await pages.bob.evaluate(() => window.closeInfo);
  report('the other page stays open', bobClosed === null, JSON.stringify(bobClosed));
  const again = await fetch(`${base}/deleteClient/alice`);
  const j = await again.text();
  report('unknown id answers JSON {"mesg": ...}', again.status === 404 && JSON.parse(j).mesg !== undefined, j);
  await browser.close();
}

async function ticker(base) {
  const browser = await launch();
  const page = await (await browser.newContext()).newPage();
  await page.goto(base + '/');
  await page.evaluate(PAGE_SETUP);
  await page.evaluate(u => window.openSocket(u), base.replace('http', 'ws') + '/websocket');
  const times = await page.evaluate(async () => {
    const t = [];
    for (let i = 0; i < 3; i++) { const m = await window.next(5000); t.push([m.t, m.data]); }
    return t;
  });
  const gaps = times.slice(1).map((x, i) => (x[0] - times[i][0]) / 1000);
  report('at least three messages arrive', times.length >= 3 && times.every(x => x[1] === '..........'), JSON.stringify(times.map(x => x[1])));
  report('about 2 s apart', gaps.every(g => g > 1.6 && g < 2.4), `gaps ${gaps.map(g => g.toFixed(3)).join(', ')} s`);
  await browser.close();
}

const args = process.argv.slice(2);
const base = args[args.indexOf('--base') + 1];
const run = { echo, push, ticker }[args[0]];
run(base).then(() => process.exit(failures ? 1 : 0), e => { report(args[0], false, e.stack || e); process.exit(1); });
