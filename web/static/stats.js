// stats.js — the stream stats overlay (<div id="stats">, shown with the
// toolbar button #stats-toggle) and window.shojiViewerStats, a read-only
// snapshot of the frame counters for end-to-end tests and `shoji-bench`.
//
// The overlay shows, updated once a second while it is open (each value
// also as a data attribute of #stats):
//
//   data-fps          frames drawn per second
//   data-bytes        frame bytes received per second
//   data-input-frame  ms from the last button, key or IME commit sent to the
//                     first frame that arrived after it and was drawn ('' until
//                     measured)
//   data-drops        frames received and never drawn (a newer one replaced
//                     them) since the page loaded
//
// The protocol has no echo, so there is no network round-trip time to
// show; input→frame is what the clinician feels. It counts only frames that
// arrived after the input was sent, and gives up on an input that changed
// nothing on screen for INPUT_FRAME_MAX_MS.

const UPDATE_MS = 1000;
const INPUT_FRAME_MAX_MS = 5000;

/**
 * isPress reports whether msg is an input whose effect the clinician waits
 * to see: a button or key going down, or IME text committed.
 */
function isPress(msg) {
  switch (msg.type) {
    case 'mouse':
    case 'key':
      return msg.action === 'down';
    case 'ime':
      return msg.action === 'commit';
    default:
      return false;
  }
}

/** formatRate writes bytes per second for people. */
function formatRate(bps) {
  if (bps >= 1e6) {
    return (bps / 1e6).toFixed(1) + ' MB/s';
  }
  if (bps >= 1e3) {
    return (bps / 1e3).toFixed(1) + ' kB/s';
  }
  return Math.round(bps) + ' B/s';
}

/** Stats measures input→frame and drives the overlay. */
export class Stats {
  /**
   * @param {object} o
   * @param {import('./screen.js').Screen} o.screen whose counts are shown
   * @param {HTMLElement} o.panel <div id="stats">
   * @param {HTMLButtonElement} o.toggle <button id="stats-toggle">
   * @param {() => void} o.focusRemote gives keyboard focus back to the page
   */
  constructor({ screen, panel, toggle, focusRemote }) {
    this.screen = screen;
    this.panel = panel;
    this.toggle = toggle;
    this.values = {
      fps: panel.querySelector('#stats-fps'),
      bytes: panel.querySelector('#stats-bytes'),
      inputFrame: panel.querySelector('#stats-input-frame'),
      drops: panel.querySelector('#stats-drops'),
    };
    this.timer = 0;
    this.last = null; // {at, drawn, bytes} at the previous update
    this.probe = null; // {at, afterSeq}: an input waiting for its frame
    this.inputFrameMs = NaN; // the latest input→frame measured

    toggle.addEventListener('click', () => {
      this.show(panel.hidden);
      focusRemote();
    });
    document.addEventListener('visibilitychange', () => this.run());
  }

  /**
   * sent is told every input message that went to the server; a press
   * starts an input→frame measurement unless one is open.
   */
  sent(msg) {
    if (!isPress(msg)) {
      return;
    }
    const now = performance.now();
    if (this.probe && now - this.probe.at <= INPUT_FRAME_MAX_MS) {
      return; // the earlier press is still waiting for its frame
    }
    this.probe = { at: now, afterSeq: this.screen.seq };
  }

  /** frameDrawn is told each frame drawn (Screen.onDrawn). */
  frameDrawn(seq, at) {
    const p = this.probe;
    if (!p || seq <= p.afterSeq) {
      return; // no press waiting, or a frame that was on its way before it
    }
    this.probe = null;
    const ms = at - p.at;
    if (ms <= INPUT_FRAME_MAX_MS) {
      this.inputFrameMs = ms;
    }
  }

  /** show opens or closes the overlay. */
  show(on) {
    this.panel.hidden = !on;
    this.toggle.setAttribute('aria-expanded', String(on));
    this.last = null;
    this.run();
  }

  // run keeps the once-a-second update going while the overlay is open and
  // the tab visible, and stops it otherwise.
  run() {
    const want = !this.panel.hidden && !document.hidden;
    if (want && !this.timer) {
      this.update();
      this.timer = setInterval(() => this.update(), UPDATE_MS);
    } else if (!want && this.timer) {
      clearInterval(this.timer);
      this.timer = 0;
      this.last = null;
    }
  }

  update() {
    const c = this.screen.counts;
    const now = performance.now();
    const last = this.last;
    this.last = { at: now, drawn: c.drawn, bytes: c.bytes };
    const d = this.panel.dataset;
    const v = this.values;
    if (last && now > last.at) {
      const s = (now - last.at) / 1000;
      const fps = (c.drawn - last.drawn) / s;
      const bps = (c.bytes - last.bytes) / s;
      d.fps = fps.toFixed(1);
      d.bytes = String(Math.round(bps));
      v.fps.textContent = fps.toFixed(fps < 10 ? 1 : 0);
      v.bytes.textContent = formatRate(bps);
    } else {
      d.fps = '';
      d.bytes = '';
      v.fps.textContent = '–';
      v.bytes.textContent = '–';
    }
    const ms = this.inputFrameMs;
    d.inputFrame = Number.isFinite(ms) ? String(Math.round(ms)) : '';
    v.inputFrame.textContent = Number.isFinite(ms) ? Math.round(ms) + ' ms' : '–';
    d.drops = String(c.dropped);
    v.drops.textContent = String(c.dropped);
  }
}

/**
 * exposeStats defines window.shojiViewerStats: each read returns a frozen
 * snapshot {framesReceived, framesDrawn, framesDropped, framesPartial,
 * framesCopied, framesRejected, bytesReceived, lastDrawAt} of screen's
 * counters (framesPartial: partial frames drawn, part of framesDrawn;
 * framesCopied: partial frames drawn that carried a copy of the canvas, a
 * scroll, part of framesPartial; framesRejected: partial frames refused,
 * part of framesDropped) (lastDrawAt in performance.now() time, 0
 * before the first frame). It holds counts only and can change nothing.
 */
export function exposeStats(screen) {
  const c = screen.counts;
  Object.defineProperty(window, 'shojiViewerStats', {
    configurable: false,
    enumerable: false,
    get: () => Object.freeze({
      framesReceived: c.received,
      framesDrawn: c.drawn,
      framesDropped: c.dropped,
      framesPartial: c.partial,
      framesCopied: c.copied,
      framesRejected: c.rejected,
      bytesReceived: c.bytes,
      lastDrawAt: c.lastDrawAt,
    }),
  });
}
