/* The loyalty mock's console (issue 19): a client of openapi/admin.yaml, nothing private.
   Plain DOM code, one block per view; no framework, no build step, nothing from another host.

   - Admin base: location.pathname up to `/console` (works for /t/<id>/__admin and behind a prefix).
   - Token: sessionStorage `lcs-admin-token:<admin base>`, sent as X-Admin-Token; a 401 shows the
     labelled token form, then the call is retried.
   - Traffic: GET <base>/events (server-sent events read with fetch, since EventSource cannot send
     headers). Every summary is kept in memory (the newest 20,000); the feed shows the newest 100
     that pass the filters, up to 500 with "show more" or by scrolling to the end (a cap, not virtual
     scrolling: filters run on the in-memory list). A dropped stream reconnects with since=<last id>. */
'use strict';
(() => {
  const path = location.pathname;
  const cut = path.lastIndexOf('/console');
  const BASE = cut >= 0 ? path.slice(0, cut) : path.replace(/\/+$/, '');
  const ROOT = BASE.replace(/\/__admin$/, ''); // where the vendor APIs of this world are
  const TOKEN_KEY = 'lcs-admin-token:' + BASE;
  const CODES_KEY = 'lcs-codes:' + BASE;
  const FEED_PAGE = 100; // rows rendered at first and per "show more"
  const FEED_ROWS = 500; // at most
  const KEEP = 20000;

  const $ = (id) => document.getElementById(id);
  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => ESC[c]);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const debounce = (fn, ms) => {
    let timer = 0;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  };

  // -- the admin API ------------------------------------------------------------------------------
  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let tokenWaiters = [];

  function askToken(refused) {
    const form = $('token-form');
    $('token-error').textContent = refused ? 'That token was refused; try again.' : '';
    form.hidden = false;
    $('token-input').focus();
    return new Promise((resolve) => tokenWaiters.push(resolve));
  }

  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    token = $('token-input').value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token-input').value = '';
    $('token-form').hidden = true;
    const waiting = tokenWaiters;
    tokenWaiters = [];
    waiting.forEach((resolve) => resolve());
  });

  class ApiError extends Error {
    constructor(status, message, body) { super(message); this.status = status; this.body = body; }
  }

  async function call(method, route, options = {}) {
    const { body, query, raw, signal } = options;
    const url = BASE + route + (query ? '?' + new URLSearchParams(query) : '');
    let refused = false;
    for (;;) {
      const headers = {};
      if (token) headers['X-Admin-Token'] = token;
      let payload;
      if (body !== undefined) {
        if (raw) {
          payload = body;
          headers['Content-Type'] = 'application/json';
        } else {
          payload = JSON.stringify(body);
          headers['Content-Type'] = 'application/json';
        }
      }
      // credentials 'omit': the token travels in X-Admin-Token; with 'same-origin' the browser would
      // answer the 401's Basic challenge (meant for the docs pages) with a login prompt and hang
      const answer = await fetch(url, { method, headers, body: payload, cache: 'no-store', credentials: 'omit', signal });
      if (answer.status !== 401) return answer;
      await answer.body?.cancel();
      await askToken(refused || Boolean(token));
      refused = true;
    }
  }

  async function parsed(answer) {
    const text = await answer.text();
    let data = text;
    try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the text */ }
    if (!answer.ok) {
      const message = data && typeof data === 'object' ? (data.detail || data.title || data.message) : data;
      throw new ApiError(answer.status, `${answer.status}: ${message || answer.statusText}`, data);
    }
    return data;
  }

  const admin = async (method, route, options) => parsed(await call(method, route, options));

  function report(id, text, ok = true) {
    const node = $(id);
    node.textContent = text;
    node.classList.toggle('bad', !ok);
  }

  // -- tabs -----------------------------------------------------------------------------------------
  const tabs = [...document.querySelectorAll('[role=tab]')];
  const onShow = {};

  function selectTab(tab) {
    for (const other of tabs) {
      const chosen = other === tab;
      other.setAttribute('aria-selected', String(chosen));
      $(other.getAttribute('aria-controls')).hidden = !chosen;
    }
    const show = onShow[tab.id];
    if (show) show();
  }

  tabs.forEach((tab, index) => {
    tab.addEventListener('click', () => selectTab(tab));
    tab.addEventListener('keydown', (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(index + step + tabs.length) % tabs.length];
      next.focus();
      selectTab(next);
    });
  });

  const visible = (viewId) => !$(viewId).hidden;

  // -- the virtual clock ----------------------------------------------------------------------------
  let clock = null; // {now: ms, frozen, at: performance.now() when read}

  function setClock(state) {
    const previous = virtualNow();
    clock = { now: Date.parse(state.now), frozen: Boolean(state.frozen), at: performance.now() };
    showClock();
    if (previous !== null && Math.abs(clock.now - previous) > 2000) onClockMoved();
  }

  function virtualNow() {
    if (!clock) return null;
    return clock.frozen ? clock.now : clock.now + (performance.now() - clock.at);
  }

  const isoNow = () => new Date(virtualNow()).toISOString().replace(/\.\d{3}Z$/, 'Z');

  function showClock() {
    if (!clock) return;
    const text = isoNow();
    const state = clock.frozen ? 'frozen' : 'running';
    $('clock-badge').textContent = `${text} (${state})`;
    $('clock-now').textContent = text;
    $('clock-state').textContent = state;
    showCountdowns();
  }
  setInterval(showClock, 250);

  async function moveClock(body, message) {
    try {
      setClock(await admin('POST', '/clock', { body }));
      report('clock-result', message);
      onClockMoved();
    } catch (error) {
      report('clock-result', error.message, false);
    }
  }

  $('advance-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const seconds = Number($('advance-amount').value) * Number($('advance-unit').value);
    const unit = $('advance-unit').selectedOptions[0].textContent;
    moveClock({ advance: seconds }, `advanced by ${$('advance-amount').value} ${unit}`);
  });
  $('set-form').addEventListener('submit', (event) => {
    event.preventDefault();
    moveClock({ set: $('set-time').value.trim() }, 'set');
  });
  $('freeze').addEventListener('click', () => moveClock({ frozen: true }, 'frozen'));
  $('unfreeze').addEventListener('click', () => moveClock({ frozen: false }, 'running'));
  $('reset-mock').addEventListener('click', async () => {
    if (!window.confirm('Forget all state, the journal and the faults of this mock?')) return;
    try {
      await admin('POST', '/reset');
      codes.clear();
      saveCodes();
      clearFeed();
      report('clock-result', 'the mock was reset');
      setClock(await admin('GET', '/clock'));
      onClockMoved();
    } catch (error) {
      report('clock-result', error.message, false);
    }
  });

  function onClockMoved() {
    refreshCodes();
    refreshConformance();
  }

  // -- traffic --------------------------------------------------------------------------------------
  const entries = []; // summaries, oldest first
  let lastId = 0;
  const apisSeen = new Set();
  const opsSeen = new Set();
  let selectedId = null;

  function addOption(select, value) {
    const options = [...select.options].slice(1).map((o) => o.value);
    if (options.includes(value)) return;
    const option = new Option(value, value);
    const before = [...select.options].slice(1).find((o) => o.value > value);
    select.add(option, before || null);
  }

  function addEntries(list) {
    let pos = false;
    for (const entry of list) {
      if (entry.id <= lastId && entries.length && entry.id <= entries[entries.length - 1].id) continue;
      entries.push(entry);
      lastId = Math.max(lastId, entry.id);
      if (!apisSeen.has(entry.api)) { apisSeen.add(entry.api); addOption($('f-api'), entry.api); }
      if (entry.operation_id && !opsSeen.has(entry.operation_id)) {
        opsSeen.add(entry.operation_id);
        addOption($('f-op'), entry.operation_id);
      }
      if (entry.api && entry.api.startsWith('letstrade-pos')) pos = true;
    }
    if (entries.length > KEEP) entries.splice(0, entries.length - KEEP);
    scheduleRender();
    if (pos) { refreshCodesSoon(); refreshConformanceSoon(); refreshBillsSoon(); }
  }

  function clearFeed() {
    entries.length = 0;
    lastId = 0;
    renderFeed();
  }

  function filters() {
    return {
      api: $('f-api').value,
      op: $('f-op').value,
      status: $('f-status').value,
      text: $('f-text').value.trim().toLowerCase(),
    };
  }

  function matches(entry, f) {
    if (f.api && entry.api !== f.api) return false;
    if (f.op && entry.operation_id !== f.op) return false;
    if (f.status) {
      if (f.status === 'v') { if (!entry.violations) return false; }
      else if (f.status === '0') { if (entry.status !== 0) return false; }
      else if (String(entry.status)[0] !== f.status || entry.status < 100) return false;
    }
    if (f.text) {
      const hay = `#${entry.id} ${entry.method} ${entry.path} ${entry.operation_id || ''} ${entry.status} ${entry.api}`;
      if (!hay.toLowerCase().includes(f.text)) return false;
    }
    return true;
  }

  const timeOf = (iso) => (iso ? String(iso).slice(11, 23) : '');

  function rowHtml(entry) {
    const cls = entry.status >= 500 || entry.status === 0 ? 's5' : entry.status >= 400 ? 's4' : 's2';
    const label = `Open request ${entry.id}: ${entry.method} ${entry.path}, status ${entry.status}`;
    const selected = entry.id === selectedId ? ' selected' : '';
    return `<tr class="${cls}${selected}" data-id="${entry.id}"><td><button type="button" class="open" `
      + `aria-label="${esc(label)}" data-testid="open-entry-${entry.id}">${entry.id}</button></td>`
      + `<td>${esc(timeOf(entry.time))}</td><td>${esc(entry.api)}</td>`
      + `<td class="req"><b>${esc(entry.method)}</b> ${esc(entry.path)}</td>`
      + `<td>${esc(entry.operation_id || '–')}</td><td class="st" data-testid="status-${entry.id}">${entry.status}</td>`
      + `<td>${entry.duration_ms ?? ''}</td><td>${entry.violations ? `<span class="vio">${entry.violations}</span>` : ''}</td></tr>`;
  }

  let renderPending = false;
  let lastRender = 0;
  let feedLimit = FEED_PAGE;

  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    const wait = Math.max(0, 200 - (performance.now() - lastRender)); // at most 5 renders a second
    setTimeout(() => requestAnimationFrame(() => { renderPending = false; renderFeed(); }), wait);
  }

  function renderFeed() {
    lastRender = performance.now();
    const f = filters();
    const rows = [];
    let total = 0;
    for (let i = entries.length - 1; i >= 0; i -= 1) {
      const entry = entries[i];
      if (!matches(entry, f)) continue;
      total += 1;
      if (rows.length < feedLimit) rows.push(rowHtml(entry));
    }
    $('feed').innerHTML = rows.join('');
    const shown = Math.min(total, feedLimit);
    $('feed-more').hidden = shown >= total || feedLimit >= FEED_ROWS;
    $('feed-count').textContent = total === entries.length
      ? `${entries.length} requests${shown < total ? `, newest ${shown} shown` : ''}`
      : `${total} of ${entries.length} requests match${shown < total ? `, newest ${shown} shown` : ''}`;
    document.body.dataset.rendered = String(lastRender);
  }

  const refilter = () => { feedLimit = FEED_PAGE; renderFeed(); };
  for (const id of ['f-api', 'f-op', 'f-status']) $(id).addEventListener('change', refilter);
  $('f-text').addEventListener('input', refilter);
  const showMore = () => {
    if (feedLimit >= FEED_ROWS) return;
    feedLimit = Math.min(FEED_ROWS, feedLimit + FEED_PAGE);
    renderFeed();
  };
  $('feed-more').addEventListener('click', showMore);
  $('feed-wrap').addEventListener('scroll', () => {
    const wrap = $('feed-wrap');
    if (!$('feed-more').hidden && wrap.scrollTop + wrap.clientHeight >= wrap.scrollHeight - 40) showMore();
  });

  $('feed').addEventListener('click', (event) => {
    const row = event.target.closest('tr[data-id]');
    if (row) openEntry(Number(row.dataset.id));
  });

  $('clear-journal').addEventListener('click', async () => {
    try {
      await admin('DELETE', '/requests');
      clearFeed();
    } catch (error) {
      $('feed-count').textContent = error.message;
    }
  });

  // -- the event stream -------------------------------------------------------------------------------
  function setStatus(text, ok) {
    const node = $('stream-status');
    node.textContent = text;
    node.dataset.state = ok ? 'live' : 'down';
  }

  function handleEvent(block) {
    let type = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    const payload = JSON.parse(data.join('\n'));
    if (type === 'requests') addEntries(payload.entries || []);
    else if (type === 'clock') setClock(payload);
    else if (type === 'reset') { clearFeed(); refreshCodesSoon(); refreshConformanceSoon(); }
  }

  async function readStream(answer) {
    const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer = (buffer + value).replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        handleEvent(block);
      }
    }
  }

  async function poll() { // a mock without GET /events: ask for the entries after the last one
    setStatus('live (polling: this mock has no event stream)', true);
    for (;;) {
      try {
        const found = await admin('GET', '/requests', { query: { since: String(lastId) } });
        addEntries(found.map((e) => ({ ...e, violations: (e.violations || []).length })));
        setClock(await admin('GET', '/clock'));
      } catch (error) {
        setStatus(`disconnected: ${error.message}`, false);
      }
      await sleep(1000);
    }
  }

  async function stream() {
    let pause = 500;
    for (;;) {
      try {
        const answer = await call('GET', '/events', { query: { since: String(lastId) } });
        if (answer.status === 404 || answer.status === 405) { await answer.body?.cancel(); poll(); return; }
        if (answer.status === 429) {
          await answer.body?.cancel();
          setStatus('too many consoles are open on this mock; retrying', false);
          await sleep(5000);
          continue;
        }
        if (!answer.ok) throw new Error(`status ${answer.status}`);
        setStatus('live', true);
        pause = 500;
        await readStream(answer);
        setStatus('stream ended; reconnecting', false);
      } catch (error) {
        setStatus(`disconnected (${error.message}); reconnecting`, false);
      }
      await sleep(pause);
      pause = Math.min(pause * 2, 5000);
    }
  }

  // -- one entry ------------------------------------------------------------------------------------
  function pointerOf(field) {
    if (!field) return null;
    if (field.startsWith('/')) return field;
    let text = String(field).replace(/^(body|request|response)\.?/, '');
    if (!text) return '';
    text = text.replace(/\[(\d+)\]/g, '.$1');
    return '/' + text.split('.').filter(Boolean).map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
  }

  const parentOf = (pointer) => pointer.slice(0, Math.max(0, pointer.lastIndexOf('/')));

  /* Pretty JSON, one <span class="ln"> per line carrying its JSON pointer; `marks` maps a pointer to
     the violations shown at that line. */
  function prettyJson(value, marks) {
    const lines = [];
    const used = new Set();
    const line = (pointer, depth, text) => {
      const notes = marks.get(pointer);
      if (notes) used.add(pointer);
      const cls = notes ? 'ln violated' : 'ln';
      const note = notes ? notes.map((n) => `<span class="note">◀ ${esc(n)}</span>`).join('') : '';
      lines.push(`<span class="${cls}" data-pointer="${esc(pointer)}">${'  '.repeat(depth)}${text}${note}</span>`);
    };
    const walk = (node, pointer, depth, prefix, comma) => {
      const tail = comma ? ',' : '';
      if (node !== null && typeof node === 'object') {
        const isArray = Array.isArray(node);
        const keys = isArray ? node.map((_, i) => i) : Object.keys(node);
        const [open, close] = isArray ? ['[', ']'] : ['{', '}'];
        if (!keys.length) { line(pointer, depth, `${prefix}${open}${close}${tail}`); return; }
        line(pointer, depth, `${prefix}${open}`);
        keys.forEach((key, i) => {
          const child = `${pointer}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;
          const label = isArray ? '' : `<span class="k">${esc(JSON.stringify(key))}</span>: `;
          walk(node[key], child, depth + 1, label, i < keys.length - 1);
        });
        lines.push(`<span class="ln">${'  '.repeat(depth)}${close}${tail}</span>`);
        return;
      }
      const kind = node === null ? 'n' : typeof node === 'string' ? 's' : 'v';
      line(pointer, depth, `${prefix}<span class="${kind}">${esc(JSON.stringify(node))}</span>${tail}`);
    };
    walk(value, '', 0, '', false);
    // a violation at a field the body does not have (e.g. a required one): at its closest parent
    for (const [pointer, notes] of marks) {
      if (used.has(pointer)) continue;
      let parent = parentOf(pointer);
      while (parent && !lines.some((l) => l.includes(`data-pointer="${esc(parent)}"`))) parent = parentOf(parent);
      const at = lines.findIndex((l) => l.includes(`data-pointer="${esc(parent)}"`));
      if (at < 0) continue;
      const extra = notes.map((n) => `<span class="note">◀ ${esc(pointer)}: ${esc(n)}</span>`).join('');
      lines[at] = lines[at].replace('class="ln"', 'class="ln violated"').replace(/<\/span>$/, `${extra}</span>`);
    }
    return `<pre class="json">${lines.join('')}</pre>`;
  }

  function messageView(part, marks) {
    const headers = part.headers || {};
    const rows = Object.entries(headers).map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`);
    const query = part.query && Object.keys(part.query).length
      ? `<p class="q">query: ${esc(new URLSearchParams(part.query).toString())}</p>` : '';
    let body = '<p class="muted">no body</p>';
    if (part.body !== undefined && part.body !== null) {
      body = typeof part.body === 'object' ? prettyJson(part.body, marks) : `<pre class="json">${esc(part.body)}</pre>`;
    }
    return `<details><summary>headers (${rows.length})</summary><table class="headers">${rows.join('')}</table></details>${query}${body}`;
  }

  /* Field errors a vendor envelope names (the mock's refusal of a request). */
  function envelopeFields(body) {
    if (!body || typeof body !== 'object') return [];
    const list = Array.isArray(body.errors) ? body.errors : Array.isArray(body.details) ? body.details : [];
    return list.filter((e) => e && typeof e === 'object' && e.field).map((e) => ({ field: String(e.field), message: String(e.message || '') }));
  }

  function harOf(entry) {
    const request = entry.request || {};
    const response = entry.response || {};
    const pairs = (headers) => Object.entries(headers || {}).map(([name, value]) => ({ name, value: String(value) }));
    const text = (body) => (body === undefined || body === null ? '' : typeof body === 'string' ? body : JSON.stringify(body));
    const query = request.query || {};
    const search = Object.keys(query).length ? '?' + new URLSearchParams(query) : '';
    const url = `${location.origin}${ROOT}/${entry.api}${entry.path}${search}`;
    const requestBody = text(request.body);
    return {
      log: {
        version: '1.2',
        creator: { name: 'loyalty-mock console', version: '1' },
        entries: [{
          startedDateTime: entry.time,
          time: entry.duration_ms || 0,
          _api: entry.api,
          _path: entry.path,
          request: {
            method: entry.method, url, httpVersion: 'HTTP/1.1', headers: pairs(request.headers),
            queryString: Object.entries(query).map(([name, value]) => ({ name, value: String(value) })),
            cookies: [], headersSize: -1, bodySize: requestBody.length,
            ...(requestBody ? { postData: { mimeType: 'application/json', text: requestBody } } : {}),
          },
          response: {
            status: entry.status, statusText: '', httpVersion: 'HTTP/1.1', headers: pairs(response.headers), cookies: [],
            content: { size: text(response.body).length, mimeType: 'application/json', text: text(response.body) },
            redirectURL: '', headersSize: -1, bodySize: text(response.body).length,
          },
          cache: {}, timings: { send: 0, wait: entry.duration_ms || 0, receive: 0 },
        }],
      },
    };
  }

  /* The spec location and provenance of a refused request's errors: the drift engine checks the
     recorded exchange against the spec (POST /drift, no replay). */
  async function specCheck(entry) {
    const answer = await admin('POST', '/drift', { query: { format: 'json', replay: 'false' }, body: harOf(entry) });
    const redacted = Object.values(entry.request?.headers || {}).some((v) => String(v).includes('***'));
    const named = new Set(envelopeFields(entry.response?.body).map((f) => f.field));
    const body = entry.request?.body;
    return (answer.request_violations || [])
      // the journal keeps a credential as `***`, which the check cannot tell from none
      .filter((v) => !(redacted && String(v.detail || '').startsWith('no credential sent')))
      .map((v) => {
        const first = String(v.detail || '').split(' ')[0];
        const field = named.has(first) || hasPointer(body, pointerOf(first)) ? first : undefined;
        return { direction: 'request', kind: 'request', field, message: v.detail, location: v.location, provenance: v.provenance };
      });
  }

  function hasPointer(document, pointer) {
    if (!pointer) return false;
    let node = document;
    for (const raw of pointer.split('/').slice(1)) {
      const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      if (node === null || typeof node !== 'object' || !(key in node)) return false;
      node = node[key];
    }
    return true;
  }

  function violationHtml(v) {
    const where = v.pointer || v.field;
    return `<li class="violation" data-testid="violation"><span class="dir">${esc(v.direction || 'response')}</span> `
      + (where ? `<code class="field" data-testid="violation-field">${esc(where)}</code> ` : '')
      + `<span class="msg">${esc(v.message || v.detail || v.kind || '')}</span>`
      + (v.location ? `<br><span class="loc" data-testid="violation-location">spec: ${esc(v.location)}</span>` : '')
      + (v.provenance ? ` <span class="prov prov-${esc(v.provenance)}" data-testid="violation-provenance">${esc(v.provenance)}</span>` : '')
      + '</li>';
  }

  function renderDetail(entry, violations, checking) {
    const requestMarks = new Map();
    const responseMarks = new Map();
    for (const v of violations) {
      const pointer = pointerOf(v.pointer || v.field);
      if (pointer === null) continue;
      const marks = v.direction === 'request' ? requestMarks : responseMarks;
      const note = [v.message, v.location, v.provenance].filter(Boolean).join(' · ');
      marks.set(pointer, [...(marks.get(pointer) || []), note]);
    }
    $('detail-title').textContent = `#${entry.id} ${entry.method} ${entry.path} → ${entry.status}`;
    $('detail-meta').textContent = `${entry.time} · ${entry.api} · ${entry.operation_id || 'no operation'} · `
      + `${entry.duration_ms ?? '?'} ms · answered by ${entry.source || '?'}`;
    $('detail-violations').innerHTML = violations.length
      ? `<h3>Violations (${violations.length})</h3><ul class="violations">${violations.map(violationHtml).join('')}</ul>`
      : checking ? '<p class="muted">checking the request against the spec…</p>' : '<p class="ok">no violations</p>';
    $('detail-request').innerHTML = messageView(entry.request || {}, requestMarks);
    $('detail-response').innerHTML = messageView(entry.response || {}, responseMarks);
    $('curl-text').value = curlOf(entry);
  }

  let openedEntry = null;

  async function openEntry(id) {
    selectedId = id;
    for (const row of $('feed').querySelectorAll('tr.selected')) row.classList.remove('selected');
    $('feed').querySelector(`tr[data-id="${id}"]`)?.classList.add('selected');
    $('detail').hidden = false;
    $('detail-title').textContent = `#${id}`;
    let entry;
    try {
      entry = await admin('GET', `/requests/${id}`);
    } catch (error) {
      $('detail-violations').innerHTML = `<p class="bad">${esc(error.message)} (no longer in the journal?)</p>`;
      return;
    }
    openedEntry = entry;
    const recorded = (entry.violations || []).map((v) => ({ ...v }));
    const refused = entry.status >= 400 && entry.status < 500 && !recorded.length && entry.api !== 'letstrade-pos-provider';
    const fields = refused ? envelopeFields(entry.response?.body).map((f) => ({ ...f, direction: 'request', kind: 'request' })) : [];
    renderDetail(entry, [...recorded, ...fields], refused);
    if (!refused) return;
    let checked = [];
    try {
      checked = await specCheck(entry);
    } catch (error) {
      fields.forEach((f) => { f.location = `spec location unknown (${error.message})`; });
    }
    if (openedEntry !== entry) return;
    // the envelope's fields, each with the spec location and provenance the drift check found for it
    const merged = fields.map((f) => {
      const found = checked.find((c) => c.field === f.field);
      return found ? { ...f, location: found.location, provenance: found.provenance } : f;
    });
    const more = checked.filter((c) => !fields.some((f) => f.field === c.field));
    renderDetail(entry, [...recorded, ...merged, ...more], false);
  }

  $('close-detail').addEventListener('click', () => { $('detail').hidden = true; openedEntry = null; });

  const quote = (text) => `'${String(text).replace(/'/g, `'\\''`)}'`;
  const SKIPPED_HEADERS = new Set(['host', 'content-length', 'connection', 'accept-encoding', 'user-agent', 'accept']);

  function curlOf(entry) {
    const request = entry.request || {};
    const query = request.query || {};
    const search = Object.keys(query).length ? '?' + new URLSearchParams(query) : '';
    const url = entry.api === 'letstrade-pos-provider'
      ? `$POS_CALLBACK_URL${search}` // the till's append-vouchers endpoint (--pos-callback-url)
      : `${location.origin}${ROOT}/${entry.api}${entry.path}${search}`;
    const parts = [`curl -X ${entry.method} ${entry.api === 'letstrade-pos-provider' ? `"${url}"` : quote(url)}`];
    for (const [name, value] of Object.entries(request.headers || {})) {
      if (SKIPPED_HEADERS.has(name.toLowerCase())) continue;
      if (String(value).includes('***')) { // redacted in the journal: taken from the shell
        const variable = name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
        parts.push(`-H "${name}: $${variable}"`);
      } else {
        parts.push(`-H ${quote(`${name}: ${value}`)}`);
      }
    }
    if (request.body !== undefined && request.body !== null) {
      const body = typeof request.body === 'string' ? request.body : JSON.stringify(request.body);
      parts.push(`--data-raw ${quote(body)}`);
    }
    return parts.join(' \\\n  ');
  }

  $('copy-curl').addEventListener('click', async () => {
    const text = $('curl-text').value;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      $('curl-text').select();
      document.execCommand('copy');
    }
    $('copy-curl').textContent = 'Copied';
    setTimeout(() => { $('copy-curl').textContent = 'Copy as curl'; }, 1500);
  });

  // -- POS --------------------------------------------------------------------------------------------
  const codes = new Map(JSON.parse(sessionStorage.getItem(CODES_KEY) || '[]').map((c) => [c.code, c]));
  const saveCodes = () => sessionStorage.setItem(CODES_KEY, JSON.stringify([...codes.values()].slice(-50)));

  const value = (id) => $(id).value.trim();

  $('mint-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { type: $('mint-type').value };
    const user = {};
    if (value('mint-cell')) user.cell_number = value('mint-cell');
    if (value('mint-email')) user.email = value('mint-email');
    if (value('mint-name')) user.name = value('mint-name');
    if (Object.keys(user).length) body.user = user;
    const amounts = { 'mint-wallet': 'wallet_balance', 'mint-loan': 'loan_limit', 'mint-card': 'card_limit', 'mint-rate': 'points_per_currency_unit' };
    for (const [id, key] of Object.entries(amounts)) if (value(id)) body[key] = value(id);
    if (value('mint-v-id')) {
      body.vouchers = [{
        id: value('mint-v-id'), title: value('mint-v-title') || value('mint-v-id'), apply_to: 'BASKET',
        discount_type: $('mint-v-type').value, value: value('mint-v-value') || '0',
      }];
    }
    try {
      const minted = await admin('POST', '/letstrade-pos/codes', { body });
      codes.set(minted.code, { ...minted, status: 'ACTIVE' });
      saveCodes();
      report('mint-result', `minted ${minted.code}, valid until ${minted.expires_at}`);
      $('mint-result').dataset.code = minted.code;
      renderCodes();
    } catch (error) {
      report('mint-result', error.message, false);
    }
  });

  function countdown(code) {
    const now = virtualNow();
    if (now === null) return '';
    const left = Date.parse(code.expires_at) - now;
    if (left <= 0) return 'expired';
    const seconds = Math.floor(left / 1000);
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
  }

  function renderCodes() {
    $('codes').innerHTML = [...codes.values()].reverse().map((c) => `<tr data-code="${esc(c.code)}">`
      + `<td><code data-testid="code-${esc(c.code)}">${esc(c.code)}</code></td><td>${esc(c.type)}</td>`
      + `<td>${esc(c.user_id)}</td><td><span class="state state-${esc(c.status)}" data-testid="code-state-${esc(c.code)}">${esc(c.status)}</span></td>`
      + `<td class="countdown">${esc(c.status === 'ACTIVE' || c.status === 'EXPIRED' ? countdown(c) : '–')}</td></tr>`).join('') || '<tr><td colspan="5" class="muted">none yet</td></tr>';
  }

  function showCountdowns() {
    for (const row of $('codes').querySelectorAll('tr[data-code]')) {
      const code = codes.get(row.dataset.code);
      if (code && (code.status === 'ACTIVE' || code.status === 'EXPIRED')) row.querySelector('.countdown').textContent = countdown(code);
    }
  }

  async function refreshCodes() {
    await Promise.all([...codes.values()].map(async (c) => {
      try {
        const found = await admin('GET', `/letstrade-pos/codes/${encodeURIComponent(c.code)}`);
        codes.set(c.code, { ...c, ...found });
      } catch (error) {
        if (error.status === 404) codes.set(c.code, { ...c, status: 'UNKNOWN' }); // gone with a reset
      }
    }));
    saveCodes();
    renderCodes();
  }
  const refreshCodesSoon = debounce(refreshCodes, 300);

  async function refreshBills() {
    try {
      const bills = await admin('GET', '/letstrade-pos/orders', { query: { status: 'OPEN' } });
      $('bills').innerHTML = bills.slice(-50).reverse().map((b) => `<tr><td>${esc(b.order_code || b.order_id)}</td>`
        + `<td>${esc(b.store_id)} / ${esc(b.terminal_id)}</td><td><code>${esc(b.transaction_id)}</code></td><td>${esc(b.total)}</td>`
        + `<td><button type="button" class="pick-bill" data-store="${esc(b.store_id)}" data-terminal="${esc(b.terminal_id)}" `
        + `data-tx="${esc(b.transaction_id)}" aria-label="Select vouchers on bill ${esc(b.order_code || b.order_id)}">Select vouchers</button></td></tr>`)
        .join('') || '<tr><td colspan="5" class="muted">no open bill</td></tr>';
    } catch (error) {
      $('bills').innerHTML = `<tr><td colspan="5" class="bad">${esc(error.message)}</td></tr>`;
    }
  }
  const refreshBillsSoon = debounce(() => { if (visible('view-pos')) refreshBills(); }, 500);

  $('bills').addEventListener('click', (event) => {
    const button = event.target.closest('button.pick-bill');
    if (!button) return;
    $('append-store').value = button.dataset.store;
    $('append-terminal').value = button.dataset.terminal;
    $('append-tx').value = button.dataset.tx;
    $('append-vouchers').focus();
  });

  $('append-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const route = ['store', 'terminal', 'tx'].map((k) => encodeURIComponent(value(`append-${k}`))).join('/');
    const vouchers = value('append-vouchers').split(',').map((id) => id.trim()).filter(Boolean).map((id) => ({ id }));
    try {
      const answer = await admin('POST', `/letstrade-pos/bills/${route}/vouchers`, { body: { vouchers } });
      const problems = (answer.violations || []).map((v) => `${v.field || v.kind}: ${v.message}`).join('; ');
      report('append-result', `the POS answered ${answer.pos_status}; ${answer.valid ? 'valid' : `not valid (${problems})`}; `
        + `${answer.applied ? 'vouchers attached' : 'nothing attached'} (journal #${answer.journal_id})`, answer.applied);
      refreshBills();
    } catch (error) {
      report('append-result', error.message, false);
    }
  });

  async function refreshConformance() {
    let found;
    try {
      found = await admin('GET', '/letstrade-pos/conformance');
    } catch (error) {
      $('conf-summary').textContent = error.message;
      return;
    }
    const s = found.summary;
    $('conf-summary').textContent = `pass ${s.pass} · fail ${s.fail} · not applicable ${s.not_applicable}`;
    $('conf-summary').dataset.generatedAt = found.generated_at;
    $('rules').innerHTML = found.rules.map((rule) => `<li class="rule rule-${esc(rule.status)}" data-testid="rule-${esc(rule.id)}" data-status="${esc(rule.status)}">`
      + `<span class="badge">${esc(rule.status.replace('_', ' '))}</span> <b>${esc(rule.id)}</b> <span class="sev">${esc(rule.severity)}</span>`
      + `<div>${esc(rule.title)}</div>`
      + (rule.evidence.length ? `<ul class="evidence">${rule.evidence.map((e) => `<li><button type="button" class="link" data-open="${e.request_id}" `
        + `aria-label="Open request ${e.request_id} in the traffic view">#${e.request_id}</button> ${esc(e.detail)}</li>`).join('')}</ul>` : '')
      + `<details><summary>source</summary><blockquote>${esc(rule.source)}</blockquote></details></li>`).join('');
  }
  const refreshConformanceSoon = debounce(() => { if (visible('view-pos')) refreshConformance(); }, 400);

  $('rules').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-open]');
    if (!button) return;
    selectTab($('tab-traffic'));
    openEntry(Number(button.dataset.open));
  });
  $('conf-refresh').addEventListener('click', refreshConformance);
  $('conf-html').addEventListener('click', async () => {
    // in a sandboxed frame (no scripts, an opaque origin): the report quotes what the till sent
    try {
      const answer = await call('GET', '/letstrade-pos/conformance', { query: { format: 'html' } });
      const html = await answer.text();
      if (!answer.ok) throw new Error(`${answer.status}: ${html.slice(0, 200)}`);
      const frame = document.createElement('iframe');
      frame.title = 'POS conformance report';
      frame.className = 'report';
      frame.setAttribute('sandbox', '');
      frame.srcdoc = html;
      $('conf-report').replaceChildren(frame);
      frame.scrollIntoView();
    } catch (error) {
      $('conf-summary').textContent = error.message;
    }
  });

  onShow['tab-pos'] = () => { refreshCodes(); refreshBills(); refreshConformance(); };
  setInterval(() => { if (visible('view-pos')) refreshCodes(); }, 5000);

  // -- LOKE -------------------------------------------------------------------------------------------
  $('loke-event-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    let data = {};
    try {
      data = value('loke-data') ? JSON.parse(value('loke-data')) : {};
    } catch (error) {
      report('loke-result', `event data is not JSON: ${error.message}`, false);
      return;
    }
    const body = { ...data, event: $('loke-event').value };
    if (value('loke-org')) body.organization_id = value('loke-org');
    try {
      const answer = await admin('POST', '/loke/events', { body });
      report('loke-result', `done: ${JSON.stringify(answer).slice(0, 300)}`);
      setTimeout(refreshDeliveries, 500);
      setTimeout(refreshDeliveries, 2000);
    } catch (error) {
      report('loke-result', error.message, false);
    }
  });

  async function refreshDeliveries() {
    try {
      const found = await admin('GET', '/loke/deliveries');
      $('deliveries').innerHTML = found.slice(-200).reverse().map((d) => `<tr class="out-${esc(d.outcome)}"><td>${d.id}</td>`
        + `<td>${esc(timeOf(d.time))}</td><td>${esc(d.event)}</td><td>${esc(d.webhook_ref)}</td><td>${d.attempt}${d.copy ? ` (copy ${d.copy})` : ''}</td>`
        + `<td>${d.status ?? esc(d.error || 'no answer')}</td><td>${esc(d.outcome)}${d.retry_at ? `, retry at ${esc(timeOf(d.retry_at))}` : ''}</td>`
        + `<td><code title="${esc(d.signature)}">${esc(String(d.signature).slice(0, 19))}…</code></td></tr>`).join('')
        || '<tr><td colspan="8" class="muted">no delivery yet</td></tr>';
    } catch (error) {
      $('deliveries').innerHTML = `<tr><td colspan="8" class="bad">${esc(error.message)}</td></tr>`;
    }
  }
  $('loke-refresh').addEventListener('click', refreshDeliveries);
  onShow['tab-loke'] = refreshDeliveries;
  setInterval(() => { if (visible('view-loke')) refreshDeliveries(); }, 3000); // deliveries are asynchronous

  const faultsRoute = () => `/loke/organizations/${encodeURIComponent(value('lf-org'))}/webhooks/${encodeURIComponent(value('lf-ref'))}/faults`;
  async function lokeFaults(method, body) {
    if (!$('loke-faults-form').reportValidity()) return;
    try {
      const answer = await admin(method, faultsRoute(), body ? { body } : {});
      $('lf-result').textContent = answer ? JSON.stringify(answer, null, 2) : 'fault modes off';
      $('lf-result').classList.remove('bad');
    } catch (error) {
      report('lf-result', error.message, false);
    }
  }
  $('lf-get').addEventListener('click', () => lokeFaults('GET'));
  $('lf-clear').addEventListener('click', () => lokeFaults('DELETE'));
  $('loke-faults-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { delay_seconds: Number(value('lf-delay') || 0), duplicates: Number(value('lf-dup') || 0), reorder_window: Number(value('lf-window') || 0) };
    lokeFaults('PUT', body);
  });

  // -- faults -------------------------------------------------------------------------------------------
  async function refreshFaults() {
    try {
      const found = await admin('GET', '/faults');
      $('faults').innerHTML = found.map((f) => `<tr><td>${esc(f.id)}</td><td>${esc(f.api)}</td><td>${esc(f.operation_id || 'any')}</td>`
        + `<td><code>${esc(f.match ? JSON.stringify(f.match) : '')}</code></td><td>${f.status ?? ''}</td><td>${f.latency_ms ?? ''}</td>`
        + `<td>${f.probability ?? ''}</td><td>${f.times ?? 'always'}</td><td>${f.hits}</td></tr>`).join('')
        || '<tr><td colspan="9" class="muted">no fault</td></tr>';
    } catch (error) {
      $('faults').innerHTML = `<tr><td colspan="9" class="bad">${esc(error.message)}</td></tr>`;
    }
  }
  onShow['tab-faults'] = refreshFaults;

  $('fault-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { api: $('fault-api').value };
    if (value('fault-op')) body.operation_id = value('fault-op');
    try {
      if (value('fault-match')) body.match = JSON.parse(value('fault-match'));
    } catch (error) {
      report('fault-result', `match is not JSON: ${error.message}`, false);
      return;
    }
    const numbers = { 'fault-status': 'status', 'fault-latency': 'latency_ms', 'fault-prob': 'probability', 'fault-times': 'times' };
    for (const [id, key] of Object.entries(numbers)) if (value(id)) body[key] = Number(value(id));
    try {
      const added = await admin('POST', '/faults', { body });
      report('fault-result', `added ${added.id}`);
      refreshFaults();
    } catch (error) {
      report('fault-result', error.message, false);
    }
  });
  $('faults-clear').addEventListener('click', async () => {
    try {
      await admin('DELETE', '/faults');
      report('fault-result', 'every fault removed');
      refreshFaults();
    } catch (error) {
      report('fault-result', error.message, false);
    }
  });

  // -- drift ---------------------------------------------------------------------------------------------
  $('drift-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = $('drift-file').files[0];
    if (!file) return;
    const format = $('drift-format').value;
    report('drift-result', `analysing ${file.name} (${file.size} bytes)…`);
    $('drift-report').innerHTML = '';
    try {
      const replay = $('drift-replay').checked ? 'true' : 'false';
      const answer = await call('POST', '/drift', { query: { format, replay }, body: file, raw: true });
      if (format === 'html') {
        const html = await answer.text();
        if (!answer.ok) throw new Error(`${answer.status}: ${html.slice(0, 300)}`);
        const frame = document.createElement('iframe');
        frame.title = 'Drift report';
        frame.setAttribute('sandbox', '');
        frame.srcdoc = html;
        $('drift-report').replaceChildren(frame);
        report('drift-result', `${file.name}: the report`);
        return;
      }
      const found = await parsed(answer);
      const s = found.summary;
      report('drift-result', `${found.exchanges} exchanges, ${s.matched} matched; contracts broken ${s.contracts_broken}, `
        + `vendor violations ${s.vendor_violations}, mock differences ${s.mock_differences}, request violations ${s.request_violations ?? 0}`);
      const rows = [...(found.findings || []), ...(found.request_violations || []).map((v) => ({ ...v, verdict: 'request violates spec' }))];
      $('drift-report').innerHTML = `<table class="grid"><thead><tr><th scope="col">Verdict</th><th scope="col">API</th><th scope="col">Operation</th>`
        + `<th scope="col">Status</th><th scope="col">Where</th><th scope="col">Spec location</th><th scope="col">Provenance</th><th scope="col">Detail</th><th scope="col">Count</th></tr></thead><tbody>`
        + (rows.map((f) => `<tr><td>${esc(f.verdict)}</td><td>${esc(f.api)}</td><td>${esc(f.operation_id || '')}</td><td>${f.status ?? ''}</td>`
          + `<td><code>${esc(f.pointer || '')}</code></td><td>${esc(f.location)}</td><td>${esc(f.provenance)}</td><td>${esc(f.detail)}</td><td>${f.count ?? ''}</td></tr>`).join('')
          || '<tr><td colspan="9" class="ok">nothing differs</td></tr>') + '</tbody></table>';
    } catch (error) {
      report('drift-result', error.message, false);
    }
  });

  // -- start -----------------------------------------------------------------------------------------------
  async function start() {
    $('admin-base').textContent = BASE.includes('/t/') ? `tenant ${BASE.split('/t/')[1].split('/')[0]} · ${BASE}` : BASE;
    renderCodes();
    renderFeed();
    try {
      const health = await admin('GET', '/health');
      for (const api of health.apis || []) {
        addOption($('f-api'), api);
        $('fault-api').add(new Option(api, api));
      }
      setClock(await admin('GET', '/clock'));
    } catch (error) {
      setStatus(`cannot reach the admin API: ${error.message}`, false);
    }
    stream();
  }
  start();
})();
