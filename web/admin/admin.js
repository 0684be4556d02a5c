'use strict';
// Gyre admin UI: talks to admin/init, admin/auth, admin/api and admin/live next to this
// page (all paths relative, so any admin.handler_prefix works).

const TOKEN_KEY = 'gyre-admin-token';
const THEME_KEY = 'gyre-admin-theme';
const $ = (sel) => document.querySelector(sel);

// Fields of every server API method: [name, kind, hint]. Kinds: text, json, number, bool, list.
const METHODS = {
  publish: [['channel', 'text'], ['data', 'json', '{"text": "hello"}'], ['idempotency_key', 'text'], ['skip_history', 'bool']],
  broadcast: [['channels', 'list', 'a, b'], ['data', 'json', '{"text": "hello"}'], ['skip_history', 'bool']],
  subscribe: [['user', 'text'], ['channel', 'text'], ['client', 'text'], ['session', 'text']],
  unsubscribe: [['user', 'text'], ['channel', 'text'], ['client', 'text'], ['session', 'text']],
  disconnect: [['user', 'text'], ['client', 'text'], ['session', 'text'], ['whitelist', 'list']],
  refresh: [['user', 'text'], ['client', 'text'], ['session', 'text'], ['expired', 'bool'], ['expire_at', 'number']],
  presence: [['channel', 'text']],
  presence_stats: [['channel', 'text']],
  history: [['channel', 'text'], ['limit', 'number', '10'], ['reverse', 'bool']],
  history_remove: [['channel', 'text']],
  channels: [['pattern', 'text', '*']],
  info: [],
  batch: [['commands', 'json', '[{"publish": {"channel": "news", "data": {}}}, {"info": {}}]'], ['parallel', 'bool']],
};

let token = localStorage.getItem(TOKEN_KEY) || '';
let statusTimer = null;

function authHeaders() {
  return token ? { Authorization: 'token ' + token } : {};
}

async function api(method, params) {
  const res = await fetch('admin/api', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...authHeaders() },
    body: JSON.stringify({ method, params }),
  });
  if (res.status === 401) { logout(); throw new Error('session expired, log in again'); }
  const text = await res.text();
  // A legacy answer is one JSON object per line; the UI sends one command.
  try { return JSON.parse(text.split('\n')[0]); } catch (e) { return { error: { code: res.status, message: text } }; }
}

// ---- Theme -------------------------------------------------------------------------
function currentTheme() {
  const set = document.documentElement.dataset.theme;
  if (set) return set;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}
function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  const dark = currentTheme() === 'dark';
  const button = $('#theme');
  button.setAttribute('aria-pressed', String(dark));
  button.textContent = dark ? 'Light theme' : 'Dark theme';
}
$('#theme').addEventListener('click', () => {
  const next = currentTheme() === 'dark' ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
});
applyTheme(localStorage.getItem(THEME_KEY));

// ---- Pages -------------------------------------------------------------------------
function show(page) {
  for (const section of document.querySelectorAll('.page')) section.hidden = section.id !== 'page-' + page;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.page === page) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  clearInterval(statusTimer);
  if (page === 'status') { refreshStatus(); statusTimer = setInterval(refreshStatus, 3000); }
  if (page === 'channels') loadChannels();
  const heading = document.querySelector('#page-' + page + ' h1');
  if (heading) document.title = heading.textContent + ' · Gyre admin';
}
function route() {
  const page = (location.hash || '#status').slice(1);
  show(['status', 'actions', 'channels', 'live'].includes(page) ? page : 'status');
}
function enter() {
  $('#nav').hidden = false;
  $('#logout').hidden = !token;
  window.addEventListener('hashchange', route);
  route();
}
function logout() {
  token = '';
  localStorage.removeItem(TOKEN_KEY);
  clearInterval(statusTimer);
  window.removeEventListener('hashchange', route);
  $('#nav').hidden = true;
  $('#logout').hidden = true;
  show('login');
  $('#password').focus();
}
$('#logout').addEventListener('click', logout);

$('#login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = $('#login-error');
  error.textContent = '';
  const res = await fetch('admin/auth', { method: 'POST', body: new URLSearchParams({ password: $('#password').value }) });
  if (!res.ok) {
    error.textContent = res.status === 400 ? 'Wrong password.' : 'Login failed (HTTP ' + res.status + ').';
    $('#password').select();
    return;
  }
  token = (await res.json()).token;
  localStorage.setItem(TOKEN_KEY, token);
  $('#password').value = '';
  enter();
});

// ---- Status ------------------------------------------------------------------------
function uptime(seconds) {
  seconds = seconds || 0;
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600), m = Math.floor(seconds % 3600 / 60);
  return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + (d || h || m ? m + 'm ' : '') + (seconds % 60) + 's';
}
function cell(row, text, numeric) {
  const td = document.createElement('td');
  td.textContent = text;
  if (numeric) td.className = 'num';
  row.appendChild(td);
}
async function refreshStatus() {
  let reply;
  try { reply = await api('info', {}); } catch (e) { $('#status-updated').textContent = e.message; return; }
  if (reply.error) { $('#status-updated').textContent = 'Error: ' + reply.error.message; return; }
  const nodes = (reply.result.nodes || []).slice().sort((a, b) => a.name.localeCompare(b.name));
  const body = $('#nodes tbody');
  body.replaceChildren();
  const totals = { Nodes: nodes.length, Clients: 0, Users: 0, Subscriptions: 0 };
  for (const n of nodes) {
    const row = document.createElement('tr');
    row.dataset.node = n.name;
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = n.name;
    row.appendChild(th);
    cell(row, n.version);
    cell(row, uptime(n.uptime));
    cell(row, n.num_clients || 0, true);
    cell(row, n.num_users || 0, true);
    cell(row, n.num_channels || 0, true);
    cell(row, n.num_subs || 0, true);
    body.appendChild(row);
    totals.Clients += n.num_clients || 0;
    totals.Users += n.num_users || 0;
    totals.Subscriptions += n.num_subs || 0;
  }
  $('#totals').replaceChildren(...Object.entries(totals).map(([k, v]) => {
    const div = document.createElement('div');
    const b = document.createElement('b');
    b.textContent = v;
    div.append(b, k);
    return div;
  }));
  $('#status-updated').textContent = 'Updated ' + new Date().toLocaleTimeString() + '.';
}

// ---- Actions -----------------------------------------------------------------------
function fieldValue(kind, raw) {
  if (kind === 'bool') return raw;
  if (raw === '') return undefined;
  if (kind === 'number') return Number(raw);
  if (kind === 'list') return raw.split(/[,\s]+/).filter(Boolean);
  if (kind === 'json') { try { return JSON.parse(raw); } catch (e) { return raw; } }
  return raw;
}
function syncParams() {
  const method = $('#action-method').value;
  const params = {};
  for (const [name, kind] of METHODS[method]) {
    const input = $('#field-' + name);
    const value = fieldValue(kind, kind === 'bool' ? input.checked : input.value);
    if (value !== undefined && value !== false) params[name] = value;
  }
  $('#action-params').value = JSON.stringify(params, null, 2);
}
function buildFields() {
  const method = $('#action-method').value;
  const box = $('#action-fields');
  box.replaceChildren();
  for (const [name, kind, hint] of METHODS[method]) {
    const wrap = document.createElement('div');
    const label = document.createElement('label');
    label.htmlFor = 'field-' + name;
    label.textContent = name;
    const input = kind === 'json' ? document.createElement('textarea') : document.createElement('input');
    input.id = 'field-' + name;
    input.name = name;
    if (kind === 'bool') { input.type = 'checkbox'; input.style.width = 'auto'; }
    else if (kind === 'number') input.type = 'number';
    if (kind === 'json') { input.rows = 3; input.spellcheck = false; }
    if (hint) { input.placeholder = hint; if (kind === 'json' || method === 'channels') input.value = hint; }
    input.addEventListener('input', syncParams);
    wrap.append(label, input);
    box.appendChild(wrap);
  }
  $('#action-help').textContent = METHODS[method].length
    ? 'Fill in the fields, or edit the JSON request below.'
    : 'This method takes no parameters.';
  syncParams();
}
for (const name of Object.keys(METHODS)) $('#action-method').add(new Option(name, name));
$('#action-method').addEventListener('change', buildFields);
buildFields();
$('#action-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const out = $('#action-result');
  let params;
  try { params = JSON.parse($('#action-params').value || '{}'); } catch (e) { out.textContent = 'Invalid JSON: ' + e.message; return; }
  out.textContent = 'Sending…';
  try {
    const reply = await api($('#action-method').value, params);
    out.textContent = JSON.stringify(reply, null, 2);
  } catch (e) { out.textContent = e.message; }
});

// ---- Channels ----------------------------------------------------------------------
async function loadChannels() {
  const pattern = $('#channels-pattern').value.trim();
  const reply = await api('channels', pattern ? { pattern } : {});
  const body = $('#channels-table tbody');
  body.replaceChildren();
  if (reply.error) { $('#channels-summary').textContent = 'Error: ' + reply.error.message; return; }
  const entries = Object.entries(reply.result.channels || {}).sort(([a], [b]) => a.localeCompare(b));
  for (const [name, info] of entries) {
    const row = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = name;
    row.appendChild(th);
    cell(row, info.num_clients || 0, true);
    const td = document.createElement('td');
    const link = document.createElement('a');
    link.href = '#live';
    link.textContent = 'Watch';
    link.setAttribute('aria-label', 'Watch ' + name);
    link.addEventListener('click', () => { $('#live-channel').value = name; setTimeout(() => $('#live-form').requestSubmit(), 0); });
    td.appendChild(link);
    row.appendChild(td);
    body.appendChild(row);
  }
  $('#channels-summary').textContent = entries.length + ' channel' + (entries.length === 1 ? '' : 's') + ' with subscribers.';
}
$('#channels-form').addEventListener('submit', (event) => { event.preventDefault(); loadChannels(); });

// ---- Live view ---------------------------------------------------------------------
let watcher = null;
function liveState(text) { $('#live-state').textContent = text; }
function stopLive() {
  if (watcher) watcher.close();
  watcher = null;
  $('#live-stop').disabled = true;
}
$('#live-stop').addEventListener('click', () => { stopLive(); liveState('Stopped.'); });
$('#live-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  stopLive();
  const channel = $('#live-channel').value.trim();
  $('#live-pubs').replaceChildren();
  const res = await fetch('admin/live', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...authHeaders() },
    body: JSON.stringify({ channel }),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) { liveState('Cannot watch: ' + (answer.error || 'HTTP ' + res.status)); return; }
  if (!answer.websocket.enabled) { liveState('Cannot watch: the WebSocket transport is disabled.'); return; }
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const url = scheme + '//' + location.hostname + ':' + answer.websocket.port + answer.websocket.path;
  liveState('Connecting to ' + url + '…');
  $('#live-stop').disabled = false;
  watcher = GyreLive.watch({
    url, token: answer.token, channel,
    onState: (state, detail) => {
      if (state === 'subscribed') liveState('Watching ' + channel + ' as ' + answer.user + '.');
      else if (state === 'closed') {
        let text = 'Disconnected' + (detail ? ': ' + detail : '') + '.';
        if (!answer.origin_allowed) text += ' This page\'s origin (' + location.origin + ') is not in client.allowed_origins, so the server refuses its WebSocket.';
        liveState(text);
        $('#live-stop').disabled = true;
      }
    },
    onPublication: (pub) => {
      const li = document.createElement('li');
      const meta = document.createElement('div');
      meta.className = 'meta';
      meta.textContent = new Date().toLocaleTimeString() + (pub.offset ? ' · offset ' + pub.offset : '') + (pub.info && pub.info.user ? ' · from ' + pub.info.user : '');
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify(pub.data, null, 2);
      li.append(meta, pre);
      $('#live-pubs').prepend(li);
    },
  });
});

// ---- Start -------------------------------------------------------------------------
(async () => {
  const res = await fetch('admin/init', { headers: authHeaders() });
  const init = await res.json();
  if (init.authenticated) enter();
  else { token = ''; localStorage.removeItem(TOKEN_KEY); logout(); }
})();
