// stream.js — the viewer WebSocket (docs/protocol.md): connect, hello,
// dispatch, and reconnect with backoff after a network drop.

import { request } from './api.js';

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10000;

// MAX_MESSAGE_BYTES stays under the server's 64 KiB limit: a bigger message
// would make the server close the connection (1009).
const MAX_MESSAGE_BYTES = 60 * 1024;

// Close codes after which reconnecting would only fail the same way: the
// server rejected what this viewer sent (1007 bad data, 1008 policy, 1009
// too big). Application codes 4000–4999 are final too, so two tabs never
// take a session from each other in a loop.
function isFinalClose(code) {
  return code === 1007 || code === 1008 || code === 1009 || (code >= 4000 && code <= 4999);
}

/**
 * fits reports whether msg, as JSON, is small enough for the server. A
 * bigger message would make the server close the connection (1009).
 */
export function fits(msg) {
  const text = JSON.stringify(msg);
  // A UTF-16 code unit is at most 3 UTF-8 bytes.
  return text.length * 3 <= MAX_MESSAGE_BYTES || new Blob([text]).size <= MAX_MESSAGE_BYTES;
}

/** streamURL is the WebSocket address of the stream on this broker. */
export function streamURL() {
  return (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/api/stream';
}

/**
 * Stream owns the one WebSocket of this tab. While started it keeps a
 * connection up: after an unexpected close it reports reconnecting and tries
 * again after 0.5 s, doubling up to 10 s, with ±25 % jitter. Before each new
 * attempt it checks the login (GET /api/session, which also renews the
 * cookie): a 401 ends the stream and reports unauthorized; a login that has
 * not accepted the pledge in force (the broker refuses it the stream, e.g.
 * after an administrator changed the text) ends it and reports
 * pledgeRequired.
 */
export class Stream {
  /**
   * @param {object} handlers
   * @param {() => object} handlers.hello the hello message for each connect
   * @param {(data: ArrayBuffer) => void} handlers.frame a binary message:
   *   a full frame (a JPEG) or a partial frame, told apart by the first
   *   byte, which the viewer reads at once (a Blob would need an
   *   asynchronous read and lose the order of arrival)
   * @param {(msg: object) => void} handlers.message a JSON message with a type
   * @param {() => void} handlers.reconnecting the connection dropped; a new
   *   attempt is scheduled
   * @param {(close: {code: number, reason: string}) => void} handlers.closed
   *   the server closed the stream for good
   * @param {() => void} handlers.unauthorized the login is no longer valid
   * @param {() => void} handlers.pledgeRequired the pledge in force must be
   *   accepted before the stream may reconnect
   */
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    this.running = false;
    this.final = false;
    this.attempt = 0;
    this.timer = 0;
    window.addEventListener('online', () => {
      // The network is back: do not wait out the backoff.
      if (this.running && this.timer) {
        clearTimeout(this.timer);
        this.timer = 0;
        this.retry();
      }
    });
  }

  /** start connects; it does nothing while already started. */
  start() {
    if (this.running) {
      return;
    }
    this.running = true;
    this.final = false;
    this.attempt = 0;
    this.open();
  }

  /** stop closes the connection on purpose; nothing reconnects. */
  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = 0;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.close(1000, 'viewer closed');
    }
  }

  /**
   * markFinal says the server ended this session (status "ended"): the close
   * that follows is expected and does not reconnect.
   */
  markFinal() {
    this.final = true;
  }

  /** readyReceived says the session is live: the backoff starts over. */
  readyReceived() {
    this.attempt = 0;
  }

  /** connected reports whether messages can be sent now. */
  connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * send sends msg as JSON. It returns false, sending nothing, when the
   * stream is not connected or msg is too big for the server.
   */
  send(msg) {
    if (!this.connected() || !fits(msg)) {
      return false;
    }
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  open() {
    const ws = new WebSocket(streamURL());
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (this.ws === ws) {
        ws.send(JSON.stringify(this.h.hello()));
      }
    });
    ws.addEventListener('message', (ev) => {
      if (this.ws !== ws) {
        return;
      }
      if (typeof ev.data !== 'string') {
        this.h.frame(ev.data);
        return;
      }
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg && typeof msg.type === 'string') {
        this.h.message(msg);
      }
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) {
        return; // stopped or replaced
      }
      this.ws = null;
      this.closed(ev);
    });
    // An 'error' is always followed by 'close', which does the work.
  }

  closed(ev) {
    if (!this.running || this.final) {
      this.running = false;
      return;
    }
    if (isFinalClose(ev.code)) {
      this.running = false;
      this.h.closed({ code: ev.code, reason: ev.reason || '' });
      return;
    }
    this.h.reconnecting();
    this.schedule();
  }

  schedule() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 16);
    const delay = Math.min(BACKOFF_MAX_MS, base * (0.75 + Math.random() * 0.5));
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.retry();
    }, delay);
  }

  async retry() {
    if (!this.running) {
      return;
    }
    let resp;
    try {
      resp = await request('GET', '/api/session');
    } catch {
      resp = null; // still offline
    }
    if (!this.running || this.ws || this.timer) {
      return; // stopped, or another attempt won the race
    }
    if (resp && resp.status === 401) {
      this.running = false;
      this.h.unauthorized();
      return;
    }
    if (!resp || resp.status !== 200) {
      this.schedule();
      return;
    }
    if (resp.data.pledgeAccepted === false) {
      this.running = false;
      this.h.pledgeRequired();
      return;
    }
    this.open();
  }
}
