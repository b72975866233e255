// admin.js — the admin page (/admin, admin role only). It checks the role,
// switches between the sections (tabs chosen by the URL's #fragment, so a
// section can be linked to), and wires the modules together:
//
//   policystore.js  the policy document: load, save with If-Match
//   profiles.js     profiles, the default profile and their rules
//   groups.js       terminal groups
//   policytest.js   "test a URL"
//   policyio.js     YAML import and export
//   killswitch.js   blocked hosts and sessions (IR-1)
//   emergency.js    emergency profiles (ALLOW-5)
//   destinations.js departmental destinations for released files
//   settings.js     login banner and pledge
//   pledgegate.js   the pledge, when the broker asks for it (403 pledgeRequired)

import { pageSession } from './api.js';
import { PolicyStore } from './policystore.js';
import { Profiles } from './profiles.js';
import { Groups } from './groups.js';
import { PolicyTest } from './policytest.js';
import { PolicyIO } from './policyio.js';
import { KillSwitch } from './killswitch.js';
import { Emergency } from './emergency.js';
import { Destinations } from './destinations.js';
import { Settings } from './settings.js';
import { installPledgeGate } from './pledgegate.js';

const message = document.getElementById('admin-message');
const loginLink = document.getElementById('admin-login');
const main = document.getElementById('admin-main');
const TABS = ['policy', 'terminals', 'test', 'import', 'kill', 'emergency', 'destinations', 'notices'];

const store = new PolicyStore();
const sections = {
  policy: new Profiles(store),
  terminals: new Groups(store),
  test: new PolicyTest(store),
  import: new PolicyIO(store),
  kill: new KillSwitch(store),
  emergency: new Emergency(store),
  destinations: new Destinations(),
  notices: new Settings(),
};

/** refuse shows why the page does not open, with the login link if login. */
function refuse(text, login = true) {
  message.textContent = text;
  loginLink.hidden = !login;
  main.hidden = true;
}

// showTab shows the section named by the URL's fragment (the first one by
// default) and tells it that it is shown, so it can refresh live data.
function showTab() {
  const want = location.hash.slice(1);
  const name = TABS.includes(want) ? want : TABS[0];
  for (const sec of document.querySelectorAll('[data-section]')) {
    sec.hidden = sec.dataset.section !== name;
  }
  for (const a of document.querySelectorAll('[data-tab]')) {
    if (a.dataset.tab === name) {
      a.setAttribute('aria-current', 'page');
    } else {
      a.removeAttribute('aria-current');
    }
  }
  const s = sections[name];
  if (s && typeof s.shown === 'function') {
    s.shown();
  }
}

async function load() {
  const session = await pageSession(['admin'], {
    login: '管理者としてログインしてください。 Please log in as an administrator.',
    role: 'このページは管理者専用です。 This page is for administrators only.',
  }, refuse);
  if (session === null) {
    return;
  }
  const err = await store.load();
  if (err !== '') {
    message.textContent = err;
    // The other sections (sessions, banner) may still work.
  } else {
    message.hidden = true;
  }
  main.hidden = false;
  showTab();
  sections.notices.load();
}

window.addEventListener('hashchange', showTab);
installPledgeGate();
load();
