// toolbar.js — the broker's toolbar above the canvas: navigation buttons,
// address bar, verified host and TLS state, lookalike-host warning,
// trusted-site badge, tabs, profile, user, links for approvers, admins and
// auditors, and logout. (The copy, print and files buttons belong to
// clipboard.js and transfers.js.) The
// remote page cannot reach it: everything it shows from the page (URL, host,
// titles) is set as text.

const NEW_TAB = '新しいタブ New tab';

/** Toolbar renders `state` messages and turns clicks into `nav`/`tab` messages. */
export class Toolbar {
  /**
   * @param {object} o
   * @param {(msg: object) => boolean} o.send
   * @param {() => void} o.focusRemote gives keyboard focus back to the page
   * @param {() => void} o.onLogout
   * @param {(text: string) => void} o.toast
   */
  constructor({ send, focusRemote, onLogout, toast }) {
    this.send = send;
    this.focusRemote = focusRemote;
    this.toast = toast;
    this.state = { url: '', loading: false, tabs: [] };
    this.editing = false;
    this.tabsKey = '';

    const $ = (id) => document.getElementById(id);
    this.el = {
      back: $('back'), forward: $('forward'), reload: $('reload'), address: $('address'),
      host: $('host'), tls: $('tls'), tabs: $('tabs'), user: $('user'), notice: $('notice'),
      logout: $('logout'), hostWarning: $('host-warning'), trusted: $('trusted'), profile: $('profile'),
      approvals: $('approvals-link'), admin: $('admin-link'), audit: $('audit-link'), site: $('site'),
    };
    const el = this.el;

    el.back.addEventListener('click', () => this.nav({ action: 'back' }));
    el.forward.addEventListener('click', () => this.nav({ action: 'forward' }));
    el.reload.addEventListener('click', () => this.nav({ action: this.state.loading ? 'stop' : 'reload' }));
    el.logout.addEventListener('click', onLogout);

    // Focusing the address selects it all, so typing replaces it. A click
    // places the caret after focus, so the first click selects again.
    let clickSelects = false;
    el.address.addEventListener('focus', () => {
      this.editing = true;
      clickSelects = true;
      el.address.select();
    });
    el.address.addEventListener('click', () => {
      if (clickSelects) {
        clickSelects = false;
        el.address.select();
      }
    });
    el.address.addEventListener('blur', () => {
      this.editing = false;
      clickSelects = false;
      el.address.value = displayURL(this.state.url);
    });
    el.address.addEventListener('keydown', (e) => {
      if (e.isComposing || e.keyCode === 229) {
        return; // the IME is confirming a candidate, not submitting
      }
      if (e.key === 'Enter') {
        e.preventDefault();
        const url = el.address.value.trim();
        if (url !== '') {
          this.nav({ action: 'go', url });
        } else {
          this.focusRemote();
        }
      } else if (e.key === 'Escape') {
        e.preventDefault();
        el.address.value = displayURL(this.state.url);
        this.focusRemote();
      }
    });

    el.tabs.addEventListener('click', (e) => {
      const close = e.target.closest('[data-close-tab]');
      const tab = e.target.closest('[data-tab-id]');
      if (close) {
        this.command({ type: 'tab', action: 'close', id: close.dataset.closeTab });
      } else if (tab) {
        if (tab.getAttribute('aria-selected') === 'true') {
          this.focusRemote();
        } else {
          this.command({ type: 'tab', action: 'switch', id: tab.dataset.tabId });
        }
      }
    });
    // The strip scrolls sideways (without a scroll bar) when the tabs do not
    // fit: the wheel scrolls it.
    el.tabs.addEventListener('wheel', (e) => {
      if (e.deltaY !== 0 && el.tabs.scrollWidth > el.tabs.clientWidth) {
        e.preventDefault();
        el.tabs.scrollLeft += e.deltaY;
      }
    }, { passive: false });
    // Middle click closes a tab, as in a local browser.
    el.tabs.addEventListener('auxclick', (e) => {
      const tab = e.target.closest('[data-tab-id]');
      if (tab && e.button === 1) {
        e.preventDefault();
        this.command({ type: 'tab', action: 'close', id: tab.dataset.tabId });
      }
    });
  }

  nav(msg) {
    this.command({ type: 'nav', ...msg });
  }

  // command sends a toolbar request and gives focus back to the page.
  command(msg) {
    if (!this.send(msg)) {
      this.toast('接続していません。 Not connected.');
    }
    this.focusRemote();
  }

  /** setUser shows the logged-in user's name. */
  setUser(name) {
    this.el.user.textContent = typeof name === 'string' ? name : '';
  }

  /** setProfile shows the name of the site profile this session uses. */
  setProfile(name) {
    const p = str(name);
    this.el.profile.textContent = p;
    this.el.profile.hidden = p === '';
    this.el.profile.title = `プロファイル Profile: ${p} — 閲覧できるサイトの範囲 which sites you may open`;
  }

  /**
   * setRole shows the link to the approvals page for approvers and admins,
   * the link to the admin page for admins and the link to the audit page
   * for auditors.
   */
  setRole(role) {
    this.el.approvals.hidden = role !== 'approver' && role !== 'admin';
    this.el.admin.hidden = role !== 'admin';
    this.el.audit.hidden = role !== 'auditor';
  }

  /** currentHost is the host the toolbar shows (ASCII form), or "". */
  currentHost() {
    return this.state.host;
  }

  /** setNotice shows the broker's notice text (NOTICE-1) as the tooltip. */
  setNotice(text) {
    if (typeof text === 'string' && text.trim() !== '') {
      this.el.notice.title = text;
    }
  }

  /** setState renders a `state` message. */
  setState(s) {
    const st = {
      url: str(s.url), title: str(s.title), host: str(s.host), secure: s.secure === true,
      hostUnicode: str(s.hostUnicode), hostWarning: s.hostWarning, trusted: s.trusted === true,
      loading: s.loading === true, canGoBack: s.canGoBack === true, canGoForward: s.canGoForward === true,
      tabs: Array.isArray(s.tabs) ? s.tabs : [],
    };
    this.state = st;
    const el = this.el;
    el.back.disabled = !st.canGoBack;
    el.forward.disabled = !st.canGoForward;
    if (st.loading) {
      el.reload.textContent = '✕';
      el.reload.setAttribute('aria-label', '中止 Stop');
      el.reload.title = '読み込みを中止 Stop loading';
    } else {
      el.reload.textContent = '↻';
      el.reload.setAttribute('aria-label', '再読み込み Reload');
      el.reload.title = '再読み込み Reload';
    }
    if (!this.editing) {
      el.address.value = displayURL(st.url);
    }
    this.renderHost(st);
    el.tls.hidden = st.host === '';
    el.tls.dataset.secure = String(st.secure);
    // The words go in a .long span that narrow windows hide; the title
    // always says it in full.
    const long = document.createElement('span');
    long.className = 'long';
    if (st.secure) {
      long.textContent = ' TLS';
      el.tls.replaceChildren('🔒', long);
      el.tls.title = '暗号化された接続 (証明書は検証済み) / Encrypted connection, certificate verified';
    } else {
      long.textContent = ' not encrypted';
      el.tls.replaceChildren('⚠', long);
      el.tls.title = '暗号化されていない接続 / The connection is not encrypted';
    }
    document.title = st.title ? `${st.title} — shoji` : 'shoji';
    this.renderTabs(st.tabs);
  }

  // renderHost shows the verified host, the warning for a lookalike or
  // mixed-script host, and the trusted-site badge. The host is shown in its
  // Unicode form when the broker sends one, except for a lookalike host:
  // as in Chromium's own address bar, that one is shown in its ASCII
  // (punycode) form, which cannot pass for the host it imitates.
  renderHost(st) {
    const el = this.el;
    const warn = st.host !== '' && (st.hostWarning === true || (typeof st.hostWarning === 'string' && st.hostWarning !== ''));
    const unicode = st.hostUnicode !== '' && st.hostUnicode !== st.host;
    el.host.textContent = unicode && !warn ? st.hostUnicode : st.host;
    el.host.title = unicode ? `${st.hostUnicode}\n(${st.host})` : st.host;
    el.hostWarning.hidden = !warn;
    el.site.classList.toggle('warn', warn);
    if (warn) {
      const why = typeof st.hostWarning === 'string' ? st.hostWarning : '';
      el.hostWarning.title = '紛らわしいホスト名です。偽サイトの可能性があります。 ' +
        `This host name looks like another one and may be a fake site: ${st.host}` + (why ? `\n${why}` : '');
    }
    // A lookalike host is never presented as trusted, whatever a rule says.
    el.trusted.hidden = !st.trusted || st.host === '' || warn;
  }

  renderTabs(tabs) {
    const key = JSON.stringify(tabs.map((t) => [t.id, t.title, t.url, t.active]));
    if (key === this.tabsKey) {
      return; // unchanged: keep the buttons under the pointer
    }
    this.tabsKey = key;
    const strip = this.el.tabs;
    strip.replaceChildren();
    let active = null;
    for (const t of tabs) {
      const id = str(t.id);
      const title = str(t.title) || displayURL(str(t.url)) || NEW_TAB;
      const wrap = document.createElement('div');
      wrap.className = t.active ? 'tab active' : 'tab';
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'tab-title';
      b.setAttribute('role', 'tab');
      b.dataset.tabId = id;
      b.setAttribute('aria-selected', t.active ? 'true' : 'false');
      b.textContent = title;
      b.title = t.url ? `${title}\n${t.url}` : title;
      const x = document.createElement('button');
      x.type = 'button';
      x.className = 'tab-close';
      x.dataset.closeTab = id;
      x.setAttribute('aria-label', `タブを閉じる Close tab: ${title}`);
      x.title = 'タブを閉じる Close tab';
      x.textContent = '×';
      wrap.append(b, x);
      strip.append(wrap);
      if (t.active) {
        active = wrap;
      }
    }
    // Keep the active tab in view (the strip is its offsetParent).
    if (active) {
      if (active.offsetLeft < strip.scrollLeft) {
        strip.scrollLeft = active.offsetLeft;
      } else if (active.offsetLeft + active.offsetWidth > strip.scrollLeft + strip.clientWidth) {
        strip.scrollLeft = active.offsetLeft + active.offsetWidth - strip.clientWidth;
      }
    }
  }

  /** reset clears what a previous session showed. */
  reset() {
    this.tabsKey = '';
    this.setState({});
  }
}

function str(v) {
  return typeof v === 'string' ? v : '';
}

function displayURL(url) {
  return url === 'about:blank' ? '' : url;
}
