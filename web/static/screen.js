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
 * Frames: latest wins. At most one undecoded frame waits while another is
 * decoding (a newer arrival replaces it), and at most one decoded bitmap
 * waits for the next animation frame (a newer one replaces it). So a slow
 * terminal skips frames and never builds a queue.
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

    this.pending = null; // newest undecoded frame (ArrayBuffer)
    this.decoding = false;
    this.next = null; // newest decoded, not yet drawn (ImageBitmap)
    this.shown = null; // the bitmap on screen, kept to redraw after a resize
    this.raf = 0;
    this.frames = 0;

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

  /** push takes a binary frame (a JPEG) from the stream. */
  push(buf) {
    this.pending = buf; // latest wins: an older undecoded frame is dropped
    this.decode();
  }

  /** clear forgets every frame, e.g. when a new session starts. */
  clear() {
    this.pending = null;
    if (this.next) {
      this.next.close();
      this.next = null;
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
      const buf = this.pending;
      this.pending = null;
      let bmp;
      try {
        bmp = await createImageBitmap(new Blob([buf], { type: 'image/jpeg' }));
      } catch {
        continue; // a broken frame: wait for the next one
      }
      if (this.next) {
        this.next.close(); // never drawn: a newer one replaces it
      }
      this.next = bmp;
      if (!this.raf) {
        this.raf = requestAnimationFrame(() => this.draw());
      }
    }
    this.decoding = false;
  }

  draw() {
    this.raf = 0;
    const bmp = this.next;
    if (!bmp) {
      return;
    }
    this.next = null;
    this.ctx.drawImage(bmp, 0, 0, this.canvas.width, this.canvas.height);
    if (this.shown) {
      this.shown.close();
    }
    this.shown = bmp;
    this.frames++;
    document.body.dataset.frames = String(this.frames);
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
