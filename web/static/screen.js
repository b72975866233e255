// screen.js — the canvas: its size and pixel ratio, and drawing the newest
// frame.

const MIN_SIDE = 100;
const MAX_SIDE = 4096;
const MIN_DPR = 0.5;
const MAX_DPR = 4;
const RESIZE_DEBOUNCE_MS = 150;

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

/**
 * Screen sizes <canvas id="screen"> to the stage below the toolbar and draws
 * frames onto it.
 *
 * Size: the canvas's CSS size is the stage's size in whole CSS pixels; its
 * backing store is that times devicePixelRatio, rounded. The remote viewport
 * is the same CSS size (clamped to the protocol's 100–4096) and ratio, so a
 * frame maps one to one onto the backing store. Size changes (window resize,
 * moving to a screen with another scaling, browser zoom) are reported,
 * debounced, through onResize.
 *
 * Frames: latest wins, and never backwards. Each frame gets a sequence
 * number as it arrives. One frame decodes at a time, off the main thread
 * (createImageBitmap, straight from the WebSocket's Blob), and at most one
 * undecoded frame waits meanwhile (a newer arrival replaces it). A decoded
 * frame is drawn at once, in the task where its decode resolves, not from
 * the next requestAnimationFrame callback: the canvas holds it as soon as
 * it can, the draw is no part of a display frame's main-thread work, and a
 * decode that resolves just after a frame's callbacks does not wait a whole
 * frame before anything reading the canvas sees it. The compositor shows
 * the canvas on its next display frame either way; a frame drawn and then
 * replaced before that counts as drawn. A bitmap not newer than the one on
 * screen is never drawn. So a slow terminal skips frames and never builds a
 * queue, and nothing of the decoding runs where input events are handled.
 * (ImageDecoder decodes faster but yields YUV frames whose conversion in
 * drawImage costs the main thread several milliseconds a frame.)
 *
 * counts holds what happened to the frames, for the stats overlay and
 * window.shojiViewerStats (stats.js): received, drawn, dropped (received
 * and never drawn: a newer frame replaced it before its decode began, or
 * rarely it could not be decoded or clear() forgot it), bytes received,
 * and lastDrawAt (performance.now() of the last draw, 0 before the first).
 * Once the frames received have settled, received = drawn + dropped.
 * <body data-frames> is counts.drawn, for end-to-end tests.
 */
export class Screen {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {HTMLElement} stage the element whose box the canvas fills
   * @param {(vp: {width: number, height: number, dpr: number}) => void} onResize
   */
  constructor(canvas, stage, onResize) {
    this.canvas = canvas;
    this.stage = stage;
    this.onResize = onResize;
    this.ctx = canvas.getContext('2d', { alpha: false });
    this.cssW = 0;
    this.cssH = 0;
    this.vp = { width: MIN_SIDE, height: MIN_SIDE, dpr: 1 };
    this.reported = '';
    this.resizeTimer = 0;

    this.seq = 0; // sequence number of the newest frame received
    this.epoch = 0; // bumped by clear(): a decode started before is stale
    this.pending = null; // newest undecoded frame: {data, seq}
    this.decoding = false;
    this.shown = null; // the bitmap on screen, kept to redraw after a resize
    this.shownSeq = 0; // sequence number of the frame on screen
    this.counts = { received: 0, drawn: 0, dropped: 0, bytes: 0, lastDrawAt: 0 };

    /**
     * beforeDraw, when set, runs just before each frame is drawn, so
     * pending input (coalesced moves) goes out no later than the paint
     * that follows it.
     * @type {?() => void}
     */
    this.beforeDraw = null;
    /**
     * onDrawn, when set, is told the sequence number and time
     * (performance.now()) of each frame drawn.
     * @type {?(seq: number, at: number) => void}
     */
    this.onDrawn = null;

    new ResizeObserver(() => this.measure()).observe(stage);
    this.watchRatio();
    document.addEventListener('visibilitychange', () => this.decode());
  }

  /** viewport returns the remote viewport this canvas asks for. */
  viewport() {
    this.measure();
    this.reported = JSON.stringify(this.vp);
    return { ...this.vp };
  }

  /**
   * toRemote maps a point in client (CSS) coordinates to the remote
   * viewport, clamped inside it.
   */
  toRemote(clientX, clientY) {
    const r = this.canvas.getBoundingClientRect();
    const sx = r.width > 0 ? this.vp.width / r.width : 1;
    const sy = r.height > 0 ? this.vp.height / r.height : 1;
    const x = clamp((clientX - r.left) * sx, 0, this.vp.width - 1);
    const y = clamp((clientY - r.top) * sy, 0, this.vp.height - 1);
    return { x: Math.round(x * 100) / 100, y: Math.round(y * 100) / 100 };
  }

  /**
   * toLocal maps a point of the remote viewport to CSS pixels relative to
   * the canvas's top-left corner.
   */
  toLocal(x, y) {
    return { x: x * (this.cssW / this.vp.width), y: y * (this.cssH / this.vp.height) };
  }

  /**
   * push takes a binary frame (a JPEG) from the stream, as the Blob the
   * WebSocket delivers or as an ArrayBuffer.
   * @param {Blob|ArrayBuffer} data
   */
  push(data) {
    const c = this.counts;
    c.received++;
    c.bytes += data instanceof Blob ? data.size : data.byteLength;
    if (this.pending) {
      c.dropped++; // latest wins: the older undecoded frame is dropped
    }
    this.pending = { data, seq: ++this.seq };
    this.decode();
  }

  /** clear forgets every frame, e.g. when a new session starts. */
  clear() {
    this.epoch++;
    if (this.pending) {
      this.pending = null;
      this.counts.dropped++;
    }
    if (this.shown) {
      this.shown.close();
      this.shown = null;
    }
    this.paintBlank();
  }

  measure() {
    const r = this.stage.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) {
      return; // hidden: keep the last size
    }
    const dpr = clamp(window.devicePixelRatio || 1, MIN_DPR, MAX_DPR);
    const w = Math.max(1, Math.floor(r.width));
    const h = Math.max(1, Math.floor(r.height));
    if (w !== this.cssW || h !== this.cssH) {
      this.cssW = w;
      this.cssH = h;
      this.canvas.style.width = w + 'px';
      this.canvas.style.height = h + 'px';
    }
    const bw = Math.round(w * dpr);
    const bh = Math.round(h * dpr);
    if (this.canvas.width !== bw || this.canvas.height !== bh) {
      this.canvas.width = bw; // this clears the canvas: redraw
      this.canvas.height = bh;
      this.redraw();
    }
    this.vp = {
      width: clamp(w, MIN_SIDE, MAX_SIDE),
      height: clamp(h, MIN_SIDE, MAX_SIDE),
      dpr: Math.round(dpr * 1000) / 1000,
    };
    if (JSON.stringify(this.vp) !== this.reported) {
      clearTimeout(this.resizeTimer);
      this.resizeTimer = setTimeout(() => {
        const now = JSON.stringify(this.vp);
        if (now !== this.reported) {
          this.reported = now;
          this.onResize({ ...this.vp });
        }
      }, RESIZE_DEBOUNCE_MS);
    }
  }

  // watchRatio re-measures when devicePixelRatio changes: the window moved
  // to a screen with another scaling, or the page zoom changed.
  watchRatio() {
    const mq = window.matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    mq.addEventListener('change', () => {
      this.measure();
      this.watchRatio();
    }, { once: true });
  }

  async decode() {
    if (this.decoding) {
      return;
    }
    this.decoding = true;
    // A hidden tab does not draw: leave the newest frame undecoded until the
    // tab is shown again.
    while (this.pending && !document.hidden) {
      const { data, seq } = this.pending;
      this.pending = null;
      const epoch = this.epoch;
      let bmp;
      try {
        bmp = await createImageBitmap(data instanceof Blob ? data : new Blob([data], { type: 'image/jpeg' }));
      } catch {
        this.counts.dropped++; // a broken frame: wait for the next one
        continue;
      }
      if (epoch !== this.epoch) {
        bmp.close(); // a frame of the stream before clear()
        this.counts.dropped++;
        continue;
      }
      this.show(bmp, seq);
    }
    this.decoding = false;
  }

  // show draws a decoded frame now, unless a frame at least as new is
  // already on screen: then the bitmap is closed and counted as dropped.
  show(bmp, seq) {
    const c = this.counts;
    if (seq <= this.shownSeq) {
      bmp.close();
      c.dropped++;
      return;
    }
    if (this.beforeDraw) {
      this.beforeDraw();
    }
    this.ctx.drawImage(bmp, 0, 0, this.canvas.width, this.canvas.height);
    if (this.shown) {
      this.shown.close();
    }
    this.shown = bmp;
    this.shownSeq = seq;
    c.drawn++;
    c.lastDrawAt = performance.now();
    document.body.dataset.frames = String(c.drawn);
    if (this.onDrawn) {
      this.onDrawn(seq, c.lastDrawAt);
    }
  }

  redraw() {
    if (this.shown) {
      this.ctx.drawImage(this.shown, 0, 0, this.canvas.width, this.canvas.height);
    } else {
      this.paintBlank();
    }
  }

  paintBlank() {
    this.ctx.fillStyle = '#e9ecef';
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }
}
