// viewer.js — the page at /: login, pledge, then the viewer. It wires the
// modules together; each module has one job:
//
//   api.js      JSON requests to the broker
//   login.js    the login form and banner
//   pledge.js   the pledge, accepted before the first session and again
//               whenever its text changes (NOTICE-1, NOTICE-3)
//   stream.js   the WebSocket, hello and reconnect
//   screen.js   canvas size and frame drawing
//   input.js    mouse, wheel, keys and IME relay
//   toolbar.js  navigation, address, host/TLS, tabs
//   dialogs.js  the remote page's JavaScript dialogs
//   access.js   site requests from a block page and their outcome
//   clipboard.js copy, paste (with its warning) and print
//   transfers.js the files panel: downloads, prints, uploads
//   upload.js   files for a page's file chooser, and dropped files
//   status.js   session state, crashed/ended overlay, toast
//   stats.js    the stream stats overlay and window.shojiViewerStats
//
// For end-to-end tests, <body> carries data-state (the session state) and
// data-frames (how many frames were drawn); window.shojiViewerStats counts
// frames received, drawn and dropped.

import { request, errorText, onPledgeRequired, UNREACHABLE } from './api.js';
import { Login } from './login.js';
import { Pledge } from './pledge.js';
import { Stream } from './stream.js';
import { Screen } from './screen.js';
import { Input } from './input.js';
import { Toolbar } from './toolbar.js';
import { Dialogs } from './dialogs.js';
import { Access } from './access.js';
import { Clipboard } from './clipboard.js';
import { Transfers } from './transfers.js';
import { Upload } from './upload.js';
import { Status } from './status.js';
import { Stats, exposeStats } from './stats.js';

const PROTOCOL_VERSION = 3;
const KEEPALIVE_MS = 60 * 1000; // renew the login cookie this often while in use
const ACTIVE_WINDOW_MS = 60 * 1000; // "in use" means input within this time
const ACTIVITY_MS = 30 * 1000; // at most one `activity` message this often
const EXPIRED = 'セッションの有効期限が切れました。もう一度ログインしてください。 Your session expired; please log in again.';

const views = {
  loading: document.getElementById('loading-view'),
  login: document.getElementById('login-view'),
  pledge: document.getElementById('pledge-view'),
  viewer: document.getElementById('viewer'),
};

function show(name) {
  for (const [k, el] of Object.entries(views)) {
    el.hidden = k !== name;
  }
}

const status = new Status();
const stream = new Stream({
  hello: () => ({ type: 'hello', version: PROTOCOL_VERSION, ...screen.viewport() }),
  frame: (buf) => screen.push(buf),
  message: onMessage,
  reconnecting: () => status.set('reconnecting'),
  closed: ({ reason }) => {
    stopSession();
    status.closed(reason, boot);
  },
  unauthorized: () => toLogin(EXPIRED),
  pledgeRequired: () => boot(), // boot shows the pledge in force
});
const send = (msg) => stream.send(msg);
const screen = new Screen(document.getElementById('screen'), document.getElementById('stage'),
  (vp) => send({ type: 'resize', ...vp }));
const stats = new Stats({
  screen,
  panel: document.getElementById('stats'),
  toggle: document.getElementById('stats-toggle'),
  focusRemote: () => focusRemote(),
});
exposeStats(screen);
// sendInput sends the clinician's input; the stats time a press to the
// frame that shows it.
const sendInput = (msg) => {
  const ok = send(msg);
  if (ok) {
    stats.sent(msg);
  }
  return ok;
};
const input = new Input({
  canvas: document.getElementById('screen'),
  ime: document.getElementById('ime'),
  screen,
  send: sendInput,
  onActivity,
  onCommand: (command) => (command === 'print' ? clipboard.print() : clipboard.copy()),
  onPaste: (text) => clipboard.paste(text),
});
// Pending moves and wheel go out before a frame is painted.
screen.beforeDraw = () => input.flush();
screen.onDrawn = (seq, at) => stats.frameDrawn(seq, at);
// A partial frame the screen could not draw: ask for a full frame.
screen.onKeyFrameNeeded = () => send({ type: 'keyframe' });
// Keyboard focus goes back to the remote page unless one of our own modal
// dialogs (a page's dialog, the access request) is open.
const focusRemote = () => {
  if (!views.viewer.hidden && document.querySelector('#viewer dialog[open]') === null) {
    input.focus();
  }
};
const toast = (text, ms) => status.toast(text, ms);
const toolbar = new Toolbar({ send, focusRemote, onLogout: logout, toast });
const dialogs = new Dialogs({ send, focusRemote });
const access = new Access({ send, toast, focusRemote, currentHost: () => toolbar.currentHost() });
const viewerShown = () => !views.viewer.hidden;
const clipboard = new Clipboard({ send, toast, focusRemote, shown: viewerShown });
const transfers = new Transfers({ toast, focusRemote });
const upload = new Upload({
  toast, focusRemote, shown: viewerShown, send,
  dropPoint: (cx, cy) => {
    const r = document.getElementById('screen').getBoundingClientRect();
    return cx >= r.left && cx < r.right && cy >= r.top && cy < r.bottom ? screen.toRemote(cx, cy) : null;
  },
});
const login = new Login(boot);
const pledge = new Pledge(boot, logout);
// The broker refused a request until the pledge in force is accepted (an
// administrator changed its text): show it; accepting it boots the viewer
// again, which reconnects to the same remote browser.
onPledgeRequired(async () => {
  boot();
  return false;
});

// ---- presence: the idle timer and the login cookie ----

let lastInput = 0;
let lastActivitySent = 0;
let keepAlive = 0;

function onActivity() {
  const now = Date.now();
  lastInput = now;
  if (now - lastActivitySent >= ACTIVITY_MS && stream.send({ type: 'activity' })) {
    lastActivitySent = now;
  }
}

async function renewLogin() {
  if (Date.now() - lastInput > ACTIVE_WINDOW_MS) {
    return; // away: let the idle timeout run
  }
  try {
    const resp = await request('GET', '/api/session');
    if (resp.status === 401) {
      toLogin(EXPIRED);
    } else if (resp.status === 200 && resp.data.pledgeAccepted === false) {
      boot(); // the pledge changed: show the new text
    }
  } catch {
    // Offline: the stream's reconnect reports it.
  }
}

// ---- the session ----

function onMessage(m) {
  switch (m.type) {
    case 'ready':
      stream.readyReceived();
      dialogs.clear(); // the pending ones follow
      status.hideOverlay();
      status.set('live');
      toolbar.setUser(m.user);
      toolbar.setNotice(m.notice);
      toolbar.setProfile(m.profile);
      if (typeof m.role === 'string' && m.role !== '') {
        toolbar.setRole(m.role);
      }
      transfers.load(); // also after a reconnect: changes may have been missed
      break;
    case 'state':
      toolbar.setState(m);
      break;
    case 'dialog':
      dialogs.add(m);
      break;
    case 'dialogClosed':
      dialogs.remove(m.id);
      break;
    case 'caret':
      input.placeCaret(m);
      break;
    case 'status':
      onStatus(m);
      break;
    case 'accessRequest':
      access.open(m);
      break;
    case 'siteRequest':
      access.outcome(m);
      break;
    case 'clipboard':
      clipboard.received(m);
      break;
    case 'transfer':
      transfers.update(m);
      break;
    case 'fileChooser':
      upload.open(m);
      break;
    case 'error':
      status.toast(typeof m.message === 'string' ? m.message : '');
      break;
    default:
      // A newer server's message: ignore it.
  }
}

function onStatus(m) {
  switch (m.state) {
    case 'starting':
      status.set('connecting');
      break;
    case 'live':
      status.hideOverlay();
      status.set('live');
      focusRemote();
      break;
    case 'crashed':
      dialogs.clear();
      status.crashed(() => {
        if (send({ type: 'restart' })) {
          status.hideOverlay();
          status.set('connecting');
          focusRemote();
        } else {
          status.toast('接続していません。 Not connected.');
        }
      });
      break;
    case 'ended':
      onEnded(m);
      break;
    default:
  }
}

// LOGIN_ENDED are the reasons after which the broker has ended this login
// with the remote browser, here and at the user's other terminals
// (docs/protocol.md).
const LOGIN_ENDED = new Set(['logout', 'idle', 'lifetime', 'admin']);

function onEnded(m) {
  dialogs.clear();
  if (m.reason === 'shutdown') {
    // The service restarts and the login stays: the stream reconnects
    // after the close that follows, once the broker is back, and gets a
    // new remote browser.
    status.set('reconnecting');
    status.toast(status.endedText(m.reason, m.message), 15000);
    return;
  }
  stream.markFinal(); // no reconnect after the close that follows
  stopSession();
  if (LOGIN_ENDED.has(m.reason)) {
    status.set('ended');
    toLogin(status.endedText(m.reason, m.message));
    return;
  }
  // Another viewer took the session (replaced), or a reason this viewer
  // does not know: say so, and offer to start again.
  status.ended(m.reason, m.message, boot);
}

function startSession(session) {
  show('viewer');
  status.hideOverlay();
  status.set('connecting');
  toolbar.reset();
  toolbar.setUser(session.user);
  toolbar.setRole(session.role);
  toolbar.setProfile(session.profile);
  transfers.reset();
  clipboard.reset();
  screen.clear();
  lastInput = Date.now();
  lastActivitySent = 0;
  clearInterval(keepAlive);
  keepAlive = setInterval(renewLogin, KEEPALIVE_MS);
  stream.start();
  input.focus();
}

// stopSession closes the stream and everything that belongs to it; the
// viewer stays on screen (e.g. to show why the session ended).
function stopSession() {
  clearInterval(keepAlive);
  keepAlive = 0;
  input.releaseAll();
  stream.stop();
  dialogs.clear();
  access.close();
  clipboard.close();
  upload.close();
}

function toLogin(message = '') {
  stopSession();
  transfers.reset(); // the next login may be someone else's
  login.prepare(message);
  show('login');
  login.focus();
}

async function logout() {
  stopSession();
  try {
    await request('POST', '/api/logout', {});
  } catch {
    // The cookie is dropped by the server when it can be reached; the login
    // form is the right place either way.
  }
  toLogin();
}

/**
 * boot asks the broker who is logged in and shows the login form, the
 * pledge, or the viewer.
 */
async function boot() {
  stopSession();
  let resp;
  try {
    resp = await request('GET', '/api/session');
  } catch {
    toLogin(UNREACHABLE);
    return;
  }
  if (resp.status === 401) {
    toLogin();
    return;
  }
  if (resp.status !== 200) {
    toLogin(errorText(resp, `サーバーエラー (${resp.status}) Server error.`));
    return;
  }
  const s = resp.data;
  if (s.pledgeAccepted === false) {
    pledge.prepare(s.pledge, s.pledgeVersion);
    show('pledge');
    pledge.focus();
    return;
  }
  startSession(s);
}

// A file dropped anywhere would make this tab open it and leave the viewer.
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => e.preventDefault());
// Close the stream cleanly when the tab goes away.
window.addEventListener('pagehide', () => stream.stop());
window.addEventListener('pageshow', (e) => {
  if (e.persisted) {
    boot(); // restored from the back-forward cache with a closed stream
  }
});
// Keyboard focus belongs to the remote page whenever nothing else wants it.
window.addEventListener('focus', () => {
  if (document.activeElement === document.body || document.activeElement === null) {
    focusRemote();
  }
});

boot();
