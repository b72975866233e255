// screen.js — the canvas: its size and pixel ratio, and drawing the newest
// frame.

const MIN_SIDE = 100;
const MAX_SIDE = 4096;
const MIN_DPR = 0.5;
const MAX_DPR = 4;
const RESIZE_DEBOUNCE_MS = 150;

// Partial frames (docs/protocol.md, "Partial frames"): the layout, in step
// with broker/protocol (TestPartialConstantsAgree compares them).
const PARTIAL_MAGIC = 0x50;
const PARTIAL_FORMAT = 2;
const PARTIAL_HEADER_BYTES = 10;
const TILE_HEADER_BYTES = 12;
const MAX_TILES = 1024;
const COPY_BYTES = 12;
const MAX_COPIES = 16;
// MAX_QUEUED bounds the frames waiting to be decoded behind a full frame
// (a hidden tab, a slow terminal): past it they are all dropped and a key
// frame is asked for.
const MAX_QUEUED = 32;

/** isPartial reports whether a binary message is a partial frame. */
export function isPartial(buf) {
  return buf.byteLength > 0 && new Uint8Array(buf, 0, 1)[0] === PARTIAL_MAGIC;
}

/**
 * parsePartial reads a partial frame's header, copies and rectangles. It
 * throws an Error naming what is wrong unless the magic and format are
 * known, the quality is 0–100, there are 0 to MAX_COPIES copies whose
 * source and destination are non-empty and inside the declared frame,
 * there are 1 to MAX_TILES
 * rectangles (0 allowed with copies), each is non-empty and inside the
 * declared frame, each JPEG lies inside the message, and nothing follows
 * the last.
 * @param {ArrayBuffer} buf
 * @returns {{width: number, height: number, quality: number,
 *   copies: {sx: number, sy: number, w: number, h: number, dx: number, dy: number}[],
 *   tiles: {x: number, y: number, w: number, h: number, start: number, length: number}[]}}
 */
export function parsePartial(buf) {
  if (buf.byteLength < PARTIAL_HEADER_BYTES) {
    throw new Error('partial frame: header cut short');
  }
  const v = new DataView(buf);
  const format = v.getUint8(1);
  if (v.getUint8(0) !== PARTIAL_MAGIC || format !== PARTIAL_FORMAT) {
    throw new Error(`partial frame: unknown magic or format ${v.getUint8(0)}/${format}`);
  }
  const width = v.getUint16(2);
  const height = v.getUint16(4);
  const n = v.getUint16(6);
  const quality = v.getUint8(8);
  const nc = v.getUint8(9);
  if (quality > 100) {
    throw new Error(`partial frame: quality ${quality}`);
  }
  let off = PARTIAL_HEADER_BYTES;
  const copies = [];
  if (nc > MAX_COPIES || off + nc * COPY_BYTES > buf.byteLength) {
    throw new Error(`partial frame: ${nc} copies`);
  }
  for (let i = 0; i < nc; i++) {
    const [sx, sy, w, h, dx, dy] = [0, 2, 4, 6, 8, 10].map((k) => v.getUint16(off + k));
    off += COPY_BYTES;
    if (w < 1 || h < 1 || sx + w > width || sy + h > height || dx + w > width || dy + h > height) {
      throw new Error(`partial frame: copy ${i} (${sx},${sy} ${w}x${h} to ${dx},${dy}) outside the ${width}x${height} frame`);
    }
    copies.push({ sx, sy, w, h, dx, dy });
  }
  const minTiles = copies.length > 0 ? 0 : 1;
  if (width < 1 || height < 1 || n < minTiles || n > MAX_TILES) {
    throw new Error(`partial frame: ${n} rectangles on a ${width}x${height} frame`);
  }
  const tiles = [];
  for (let i = 0; i < n; i++) {
    if (off + TILE_HEADER_BYTES > buf.byteLength) {
      throw new Error(`partial frame: rectangle ${i} cut short`);
    }
    const x = v.getUint16(off);
    const y = v.getUint16(off + 2);
    const w = v.getUint16(off + 4);
    const h = v.getUint16(off + 6);
    const length = v.getUint32(off + 8);
    off += TILE_HEADER_BYTES;
    if (w < 1 || h < 1 || x + w > width || y + h > height) {
      throw new Error(`partial frame: rectangle ${i} (${x},${y} ${w}x${h}) outside the ${width}x${height} frame`);
    }
    if (length > buf.byteLength - off) {
      throw new Error(`partial frame: rectangle ${i} longer than the message`);
    }
    tiles.push({ x, y, w, h, start: off, length });
    off += length;
  }
  if (off !== buf.byteLength) {
    throw new Error('partial frame: bytes after the last rectangle');
  }
  return { width, height, quality, copies, tiles };
}

// Compact tiles (docs/protocol.md, broker/protocol/tables.go) leave out
// the JPEG tables every tile would repeat: the standard quantization
// tables of ITU T.81 Annex K.1 scaled to the frame's quality as libjpeg
// scales them, and the standard Huffman tables of Annex K.3. tileParts
// puts them back after the tile's SOI.
const STD_LUMA = [
  16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40,
  26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61, 60, 57, 51,
  56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
  95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
];
const STD_CHROMA = [17, 18, 18, 24, 21, 24, 47, 26, 26, 47, 99, 66, 56, 66].concat(new Array(50).fill(99));
const STD_HUFFMAN = [
  [0x00, [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], '000102030405060708090a0b'],
  [0x01, [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], '000102030405060708090a0b'],
  [0x10, [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
    '01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa'],
  [0x11, [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
    '000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a35363738393a434445464748494a535455565758595a636465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9fa'],
];

function segment(marker, payload) {
  const out = new Uint8Array(4 + payload.length);
  out.set([0xff, marker, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  out.set(payload, 4);
  return out;
}

// stdDHT is the DHT segment of the four standard Huffman tables.
const stdDHT = segment(0xc4, STD_HUFFMAN.flatMap(([id, counts, hex]) =>
  [id, ...counts, ...hex.match(/../g).map((h) => parseInt(h, 16))]));

const dqtByQuality = new Map();

// stdDQT returns the DQT segment of the standard tables at quality 1–100.
function stdDQT(quality) {
  let seg = dqtByQuality.get(quality);
  if (!seg) {
    const scale = quality < 50 ? Math.floor(5000 / quality) : 200 - 2 * quality;
    const scaled = (t) => t.map((u) => clamp(Math.floor((u * scale + 50) / 100), 1, 255));
    seg = segment(0xdb, [0, ...scaled(STD_LUMA), 1, ...scaled(STD_CHROMA)]);
    dqtByQuality.set(quality, seg);
  }
  return seg;
}

/**
 * tileParts returns the parts of a Blob holding a tile's JPEG, with the
 * tables a compact tile left out put back after its SOI. It throws an
 * Error when the tile's header is malformed or needs a quality the frame
 * does not give.
 * @param {ArrayBuffer} buf the message
 * @param {{start: number, length: number}} t the tile
 * @param {number} quality the partial frame's quality
 */
export function tileParts(buf, t, quality) {
  const b = new Uint8Array(buf, t.start, t.length);
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) {
    throw new Error('tile: not a JPEG');
  }
  let dqt = false;
  let dht = false;
  for (let i = 2; ;) {
    if (i + 4 > b.length || b[i] !== 0xff) {
      throw new Error('tile: JPEG header cut short');
    }
    const code = b[i + 1];
    if (code === 0xda) {
      break;
    }
    dqt ||= code === 0xdb;
    dht ||= code === 0xc4;
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
  if (dqt && dht) {
    return [b];
  }
  if (!dqt && (quality < 1 || quality > 100)) {
    throw new Error(`tile: no quantization tables in a frame of quality ${quality}`);
  }
  const parts = [b.subarray(0, 2)];
  if (!dqt) {
    parts.push(stdDQT(quality));
  }
  if (!dht) {
    parts.push(stdDHT);
  }
  parts.push(b.subarray(2));
  return parts;
}

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
 * (createImageBitmap), and a full frame that arrives replaces every frame
 * still waiting to be decoded.
 *
 * Partial frames (docs/protocol.md) carry rectangles to draw on the frame
 * on screen. They cannot be skipped: they wait in order behind the full
 * frame they build on (at most MAX_QUEUED). Each is checked before it is
 * decoded: the layout, every rectangle inside the declared frame, and the
 * declared frame the size of the full frame on the canvas; then all its
 * rectangles decode, each must be the size it claims, and only then are
 * they drawn, in order, in one task (never half a message). A partial frame
 * that fails any of this is dropped and counted as rejected, nothing of it
 * is drawn, and, as the canvas is no longer what the broker thinks, the
 * partial frames behind it are dropped too and onKeyFrameNeeded asks the
 * broker for a full frame; partial frames that arrive before it are dropped. A decoded
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
 * rarely it could not be decoded or clear() forgot it), partial (partial
 * frames drawn, part of drawn), copied (partial frames drawn that carried
 * a copy, part of partial), rejected (partial frames refused, part of
 * dropped), bytes received, and lastDrawAt (performance.now() of the last
 * draw, 0 before the first).
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
    this.queue = []; // undecoded frames in arrival order: {data, seq, partial}
    this.decoding = false;
    this.shown = null; // the full frame's bitmap on screen, kept to redraw after a resize
    this.composited = false; // partial frames were drawn over shown
    this.frameW = 0; // size of the full frame on the canvas, 0 before the first
    this.frameH = 0;
    this.needKey = false; // a partial frame was lost: wait for a full frame
    this.askOnShow = false; // ask for the key frame when the tab is shown
    this.shownSeq = 0; // sequence number of the frame on screen
    this.counts = { received: 0, drawn: 0, dropped: 0, partial: 0, copied: 0, rejected: 0, bytes: 0, lastDrawAt: 0 };

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
    /**
     * onKeyFrameNeeded, when set, is called when a partial frame was lost
     * and the canvas needs a full frame (the viewer sends keyframe).
     * @type {?() => void}
     */
    this.onKeyFrameNeeded = null;

    new ResizeObserver(() => this.measure()).observe(stage);
    this.watchRatio();
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && this.askOnShow) {
        this.askOnShow = false;
        if (this.needKey && this.onKeyFrameNeeded) {
          this.onKeyFrameNeeded();
        }
      }
      this.decode();
    });
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

  /** pending is the newest undecoded frame, or null. */
  get pending() {
    return this.queue.length > 0 ? this.queue[this.queue.length - 1] : null;
  }

  /**
   * push takes a binary message from the stream: a full frame (a JPEG) or
   * a partial frame, as an ArrayBuffer.
   * @param {ArrayBuffer} data
   */
  push(data) {
    const c = this.counts;
    c.received++;
    c.bytes += data.byteLength;
    const item = { data, seq: ++this.seq, partial: isPartial(data) };
    if (!item.partial) {
      c.dropped += this.queue.length; // latest wins: a full frame replaces them all
      this.queue = [item];
      this.needKey = false;
    } else if (this.needKey) {
      c.dropped++; // made for a canvas this one is not: wait for the full frame
      return;
    } else if (this.queue.length >= MAX_QUEUED) {
      c.dropped += this.queue.length + 1;
      this.queue = [];
      this.askKeyFrame();
      return;
    } else {
      this.queue.push(item);
    }
    this.decode();
  }

  /** clear forgets every frame, e.g. when a new session starts. */
  clear() {
    this.epoch++;
    this.counts.dropped += this.queue.length;
    this.queue = [];
    if (this.shown) {
      this.shown.close();
      this.shown = null;
    }
    this.composited = false;
    this.frameW = 0;
    this.frameH = 0;
    this.needKey = false;
    this.paintBlank();
  }

  // askKeyFrame waits for a full frame and asks the broker for one; a
  // hidden tab asks when it is shown again, so that a page that keeps
  // moving behind it does not cost a full frame each time the queue fills.
  askKeyFrame() {
    this.needKey = true;
    if (document.hidden) {
      this.askOnShow = true;
      return;
    }
    if (this.onKeyFrameNeeded) {
      this.onKeyFrameNeeded();
    }
  }

  // lost says the frame just taken from the queue was not drawn, so the
  // canvas is not what the partial frames behind it build on: they are
  // dropped, up to a full frame; with none queued, partial frames are
  // dropped until one comes, and when ask is set a key frame is asked for.
  lost(ask) {
    let n = 0;
    while (n < this.queue.length && this.queue[n].partial) {
      n++;
    }
    this.counts.dropped += n;
    this.queue.splice(0, n);
    if (this.queue.length > 0) {
      return;
    }
    if (ask) {
      this.askKeyFrame();
    } else {
      this.needKey = true;
    }
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
      // Partial frames drawn over the full frame live only on the canvas:
      // copy it before the resize clears it.
      const snap = this.composited ? this.snapshot() : null;
      this.canvas.width = bw; // this clears the canvas: redraw
      this.canvas.height = bh;
      this.redraw(snap);
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
    // A hidden tab does not draw: leave the frames undecoded until the tab
    // is shown again.
    while (this.queue.length > 0 && !document.hidden) {
      const item = this.queue.shift();
      if (item.partial) {
        await this.decodePartial(item);
      } else {
        await this.decodeFull(item);
      }
    }
    this.decoding = false;
  }

  async decodeFull({ data, seq }) {
    const epoch = this.epoch;
    let bmp;
    try {
      bmp = await createImageBitmap(new Blob([data], { type: 'image/jpeg' }));
    } catch {
      // A broken full frame: the partial frames behind it need another.
      // Asking would bring the same frame again (the broker resends the
      // frame it sent); the next change of quality (the sharp refresh of a
      // settled page) or size comes whole.
      this.counts.dropped++;
      this.lost(false);
      return;
    }
    if (epoch !== this.epoch) {
      bmp.close(); // a frame of the stream before clear()
      this.counts.dropped++;
      return;
    }
    this.show(bmp, seq);
  }

  // reject drops a partial frame that cannot be drawn.
  reject() {
    this.counts.rejected++;
    this.counts.dropped++;
    this.lost(true);
  }

  async decodePartial({ data, seq }) {
    const epoch = this.epoch;
    let p;
    try {
      p = parsePartial(data);
    } catch {
      this.reject();
      return;
    }
    if (p.width !== this.frameW || p.height !== this.frameH) {
      this.reject(); // made for another frame than the one on the canvas
      return;
    }
    let parts;
    try {
      parts = p.tiles.map((t) => tileParts(data, t, p.quality));
    } catch {
      this.reject();
      return;
    }
    const results = await Promise.allSettled(parts.map((ps) =>
      createImageBitmap(new Blob(ps, { type: 'image/jpeg' }))));
    const bmps = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const fits = bmps.length === p.tiles.length &&
      bmps.every((b, i) => b.width === p.tiles[i].w && b.height === p.tiles[i].h);
    if (epoch !== this.epoch || !fits || p.width !== this.frameW || p.height !== this.frameH || seq <= this.shownSeq) {
      bmps.forEach((b) => b.close());
      if (epoch !== this.epoch) {
        this.counts.dropped++; // a frame of the stream before clear()
      } else {
        this.reject();
      }
      return;
    }
    if (this.beforeDraw) {
      this.beforeDraw();
    }
    const sx = this.canvas.width / this.frameW;
    const sy = this.canvas.height / this.frameH;
    // Copies first, in order: the canvas drawn onto itself (the source is
    // read whole before the destination is painted, so overlapping copies
    // are defined). On a canvas of another size than the frame they are
    // rounded to whole canvas pixels, so repeated scrolls do not blur.
    for (const cp of p.copies) {
      const x0 = Math.round(cp.sx * sx);
      const y0 = Math.round(cp.sy * sy);
      const w = Math.round((cp.sx + cp.w) * sx) - x0;
      const h = Math.round((cp.sy + cp.h) * sy) - y0;
      if (w > 0 && h > 0) {
        this.ctx.drawImage(this.canvas, x0, y0, w, h, Math.round(cp.dx * sx), Math.round(cp.dy * sy), w, h);
      }
    }
    if (p.copies.length > 0) {
      this.counts.copied++;
    }
    p.tiles.forEach((t, i) => {
      this.ctx.drawImage(bmps[i], t.x * sx, t.y * sy, t.w * sx, t.h * sy);
      bmps[i].close();
    });
    this.composited = true;
    this.counts.partial++;
    this.drawn(seq);
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
    this.composited = false;
    this.frameW = bmp.width;
    this.frameH = bmp.height;
    this.drawn(seq);
  }

  // drawn counts a frame drawn and tells onDrawn.
  drawn(seq) {
    const c = this.counts;
    this.shownSeq = seq;
    c.drawn++;
    c.lastDrawAt = performance.now();
    document.body.dataset.frames = String(c.drawn);
    if (this.onDrawn) {
      this.onDrawn(seq, c.lastDrawAt);
    }
  }

  // snapshot copies the canvas.
  snapshot() {
    const s = document.createElement('canvas');
    s.width = this.canvas.width;
    s.height = this.canvas.height;
    s.getContext('2d').drawImage(this.canvas, 0, 0);
    return s;
  }

  // redraw paints the frame on screen again after a resize: from snap, a
  // copy of the canvas taken before, or else from the full frame's bitmap.
  redraw(snap) {
    const src = snap || this.shown;
    if (src) {
      this.ctx.drawImage(src, 0, 0, this.canvas.width, this.canvas.height);
    } else {
      this.paintBlank();
    }
  }

  paintBlank() {
    this.ctx.fillStyle = '#e9ecef';
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }
}
