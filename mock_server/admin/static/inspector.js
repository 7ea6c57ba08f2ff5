// The live inspector of the Zammad CTI mock: polls the mock's own APIs and
// draws the caller log, the request journal and the findings.
//
// Everything the PBX sent is untrusted: it is put on the page as text
// (textContent, attributes), never as markup. The page never asks for the
// configuration, so the token never reaches it.

const POLL_MS = 1000;          // while the tab is visible
const HIDDEN_POLL_MS = 5000;   // while it is in the background
const FETCH_TIMEOUT_MS = 4000;
const JOURNAL_KEEP = 500;      // journal entries the page holds (newest)

const URLS = {
  health: new URL("health", document.baseURI),
  requests: new URL("requests", document.baseURI),
  findings: new URL("findings", document.baseURI),
  reset: new URL("reset", document.baseURI),
  callerLog: new URL("calllog", document.baseURI),
  endpoint: new URL("../api/v1/cti/", document.baseURI),
};

const SEVERITIES = ["error", "warning", "info"];
const SEVERITY_WORDS = { error: ["error", "errors"], warning: ["warning", "warnings"], info: ["note", "notes"] };

const state = {
  paused: false,
  lastId: 0,
  journal: [],          // oldest first
  calls: [],            // newest first, as the caller log lists them
  findings: [],
  counts: null,         // the last /__admin/health counts
  filter: "",
  openCalls: new Set(),
  openRequests: new Set(),
  timer: null,
  inFlight: null,
  again: false,
  generation: 0,
  signature: null,
  loaded: false,
  seenFindings: 0,
};

const $ = (id) => document.getElementById(id);

// DOM helpers ---------------------------------------------------------------

/** An element: h("td", {class: "num"}, "12"). Strings become text nodes, never markup. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const hidden = (text) => h("span", { class: "visually-hidden" }, text);

function plural(n, [one, many]) {
  return `${n} ${n === 1 ? one : many}`;
}

// Formatting ----------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const dateFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

function clockTime(iso, withMillis = false) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  let text = timeFormat.format(date);
  if (withMillis) text += "." + String(date.getMilliseconds()).padStart(3, "0");
  const today = new Date();
  if (date.toDateString() !== today.toDateString()) text = `${dateFormat.format(date)} ${text}`;
  return text;
}

function timeCell(iso, withMillis = false) {
  return h("time", { datetime: iso || null, title: iso ? new Date(iso).toString() : null }, clockTime(iso, withMillis));
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

function secondsSince(iso) {
  return (Date.now() - new Date(iso).getTime()) / 1000;
}

function show(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

// Call facts ----------------------------------------------------------------

const STATES = {
  newCall: { label: "ringing", cls: "ringing" },
  answer: { label: "talking", cls: "talking" },
  hangup: { label: "ended", cls: "ended" },
};

function isMissed(call) {
  return call.state === "hangup" && call.direction === "in" && !call.done;
}

/** The journal entries of one call, oldest first. */
function requestsOf(callId) {
  return state.journal.filter((entry) => entry.call_id !== null && String(entry.call_id) === String(callId));
}

/** What the mock answered to the call's newCall (dial, reject, {}), if the journal still holds it. */
function newCallAnswer(callId) {
  const entry = requestsOf(callId).find((e) => e.event === "newCall" && e.status === 200);
  return entry ? entry.answer : null;
}

function findingsOf(callId) {
  return state.findings.filter((f) => f.call_id !== null && String(f.call_id) === String(callId));
}

function matchesFilter(callId) {
  if (!state.filter) return true;
  return callId !== null && callId !== undefined && String(callId).includes(state.filter);
}

// Severity badges -----------------------------------------------------------

function countBySeverity(findings) {
  const counts = { error: 0, warning: 0, info: 0 };
  for (const finding of findings) counts[finding.severity] = (counts[finding.severity] || 0) + 1;
  return counts;
}

/** Pills with counts by severity, e.g. (2 errors) (1 warning). */
function severityBadge(findings) {
  if (!findings.length) return h("span", { class: "none", title: "no findings" }, "—");
  const counts = countBySeverity(findings);
  const wrap = h("span", { class: "badges", title: findings.map((f) => f.code).join(", ") });
  for (const severity of SEVERITIES) {
    if (!counts[severity]) continue;
    wrap.append(h("span", { class: `pill sev-${severity}` },
      h("span", { class: "sev-icon", "aria-hidden": "true" }, SEVERITY_ICON[severity]),
      String(counts[severity]), hidden(` ${SEVERITY_WORDS[severity][counts[severity] === 1 ? 0 : 1]}`)));
  }
  return wrap;
}

const SEVERITY_ICON = { error: "✕", warning: "!", info: "i" };

function findingList(findings, withEvent) {
  const list = h("ul", { class: "finding-list" });
  for (const finding of findings) {
    let origin = null;
    if (withEvent) {
      const entry = state.journal.find((e) => e.id === finding.request_id);
      origin = entry ? `${entry.event ?? "request"} #${entry.id}` : finding.request_id ? `request #${finding.request_id}` : "the caller log";
    }
    list.append(h("li", { class: `finding sev-border-${finding.severity}` },
      h("div", { class: "finding-head" },
        h("span", { class: `pill sev-${finding.severity}` }, finding.severity),
        h("code", { class: "finding-code" }, finding.code),
        finding.field ? h("span", { class: "finding-field" }, "field ", h("code", {}, finding.field)) : null,
        origin ? h("span", { class: "finding-origin" }, "from ", origin) : null),
      h("p", { class: "finding-message" }, finding.message)));
  }
  return list;
}

// Rendering: summary --------------------------------------------------------

function renderSummary() {
  const calls = state.calls.filter((c) => matchesFilter(c.call_id));
  const live = calls.filter((c) => c.state !== "hangup").length;
  const missed = calls.filter(isMissed).length;
  const blocked = calls.filter((c) => newCallAnswer(c.call_id)?.action === "reject").length;
  $("sum-calls").textContent = String(calls.length);
  $("sum-calls-detail").replaceChildren(...(calls.length
    ? [stat(live, "live", "ok"), stat(missed, "missed", "error"), stat(blocked, "blocked", "text")]
    : [state.filter ? "no call matches the filter" : "none yet"]));

  const entries = state.journal.filter((e) => matchesFilter(e.call_id));
  const total = state.filter ? entries.length : (state.counts?.requests ?? entries.length);
  const byClass = { ok: 0, client: 0, server: 0, none: 0 };
  for (const entry of entries) byClass[statusClass(entry.status)] += 1;
  $("sum-requests").textContent = String(total);
  const parts = [stat(byClass.ok, "2xx", "ok"), stat(byClass.client, "4xx", "warn"), stat(byClass.server, "5xx", "error")];
  if (byClass.none) parts.push(stat(byClass.none, "unanswered", "text"));
  $("sum-requests-detail").replaceChildren(...(entries.length ? parts : ["none yet"]));

  const findings = state.findings.filter((f) => matchesFilter(f.call_id));
  // Say which window each count covers: the page holds the newest requests only, the caller log
  // lists the newest calls only (Zammad's view limit), findings are the whole journal's.
  $("sum-window").textContent = `Calls: the ${plural(calls.length, ["call", "calls"])} the caller log lists (newest first, `
    + `up to Zammad's view limit). Requests: ${total} in the journal; the 2xx/4xx/5xx split covers the `
    + `${plural(entries.length, ["newest request", "newest requests"])} this page holds (at most ${JOURNAL_KEEP}). `
    + `Findings: the whole journal${state.filter ? ", this call only" : ""}.`;
  const counts = countBySeverity(findings);
  const severityList = $("sum-severity");
  severityList.replaceChildren(...SEVERITIES.map((severity) =>
    h("li", { class: `sev-count sev-text-${severity}${counts[severity] ? "" : " is-zero"}` },
      h("span", { class: "big-sm" }, String(counts[severity])), " ",
      SEVERITY_WORDS[severity][counts[severity] === 1 ? 0 : 1])));

  const byCode = new Map();
  for (const finding of findings) {
    const known = byCode.get(finding.code) || { count: 0, severity: finding.severity };
    known.count += 1;
    byCode.set(finding.code, known);
  }
  const rank = (s) => SEVERITIES.indexOf(s);
  const codes = [...byCode.entries()].sort((a, b) => rank(a[1].severity) - rank(b[1].severity) || b[1].count - a[1].count || a[0].localeCompare(b[0]));
  const codeList = $("sum-codes");
  if (!codes.length) {
    codeList.replaceChildren(h("li", { class: "muted" }, state.loaded ? "Nothing wrong so far." : "…"));
  } else {
    codeList.replaceChildren(...codes.map(([code, { count, severity }]) =>
      h("li", { class: "code-count" },
        h("span", { class: `dot sev-bg-${severity}`, "aria-hidden": "true" }),
        h("code", {}, code),
        h("span", { class: "count" }, `×${count}`),
        hidden(` (${severity})`))));
  }
}

/** "2 missed" for a summary card, coloured when not zero. */
function stat(count, label, tone) {
  return h("span", { class: `stat${count ? ` stat-${tone}` : ""}` }, h("strong", {}, String(count)), ` ${label}`);
}

// Rendering: caller log -----------------------------------------------------

function partyCell(number, name) {
  const cell = h("td", { class: "party" });
  const anonymous = number === "anonymous";
  cell.append(h("span", { class: `number${anonymous ? " anonymous" : ""}` }, show(number) || "—"));
  if (name) cell.append(h("span", { class: "name" }, show(name)));
  return cell;
}

function stateCell(call) {
  const info = STATES[call.state] || { label: String(call.state), cls: "unknown" };
  const cell = h("td", { class: "state-cell" });
  cell.append(h("span", { class: `state state-${info.cls}`, dataset: { state: info.label } },
    h("span", { class: "state-dot", "aria-hidden": "true" }), info.label));
  const answer = newCallAnswer(call.call_id);
  if (answer?.action === "reject") {
    cell.append(h("span", { class: "tag tag-blocked", title: "on the block list: Zammad answered reject (busy)" }, "blocked"));
  }
  if (isMissed(call)) {
    const voicemail = call.to_comment === "voicemail";
    cell.append(h("span", { class: "tag tag-missed" }, voicemail ? "voicemail" : "missed"));
  } else if (call.state === "hangup" && !call.start_at && call.direction === "out") {
    cell.append(h("span", { class: "tag tag-muted" }, "not reached"));
  }
  if (call.comment) cell.append(h("span", { class: "cause", title: "cause" }, show(call.comment)));
  return cell;
}

function durationCell(seconds, liveSince) {
  if (liveSince) {
    return h("td", { class: "num live-duration", dataset: { since: liveSince }, title: "still running" }, duration(secondsSince(liveSince)));
  }
  return h("td", { class: "num" }, duration(seconds));
}

function renderCalls() {
  const body = $("calls-body");
  const calls = state.calls.filter((c) => matchesFilter(c.call_id));
  const rows = [];
  for (const call of calls) {
    const key = String(call.call_id);
    const open = state.openCalls.has(key);
    const detailId = `call-detail-${call.id}`;
    const findings = findingsOf(call.call_id);
    const missed = isMissed(call);
    const classes = ["call", `call-${call.direction}`, `is-${STATES[call.state]?.cls || "unknown"}`];
    if (missed) classes.push("is-missed");
    if (open) classes.push("is-open");
    if (findings.some((f) => f.severity === "error")) classes.push("has-errors");
    const inbound = call.direction === "in";
    rows.push(h("tr", { class: classes.join(" "), dataset: { callId: key } },
      h("td", { class: "col-toggle" },
        h("button", {
          type: "button", class: "toggle", "aria-expanded": String(open), "aria-controls": detailId,
          "aria-label": `Details of call ${key}`, dataset: { key: `call:${key}` },
          onclick: () => toggle(state.openCalls, key),
        }, h("span", { "aria-hidden": "true" }, "▸"))),
      h("td", { class: "col-dir" },
        h("span", { class: `dir dir-${inbound ? "in" : "out"}`, title: inbound ? "inbound" : "outbound" },
          h("span", { "aria-hidden": "true" }, inbound ? "↙" : "↗"), hidden(inbound ? "inbound" : "outbound"))),
      h("td", { class: "call-id", title: show(call.call_id) }, h("code", {}, show(call.call_id))),
      partyCell(call.from, call.from_comment),
      partyCell(call.to, call.to_comment),
      h("td", { class: "queue" }, show(call.queue)),
      stateCell(call),
      durationCell(call.duration_waiting_time, call.state === "newCall" ? call.initialized_at : null),
      durationCell(call.duration_talking_time, call.state === "answer" ? call.start_at : null),
      h("td", { class: "col-done" }, call.done
        ? h("span", { class: "done yes", title: "done" }, h("span", { "aria-hidden": "true" }, "✓"), hidden("done"))
        : h("span", { class: `done no${missed ? " missed" : ""}`, title: "not done" }, h("span", { "aria-hidden": "true" }, "○"), hidden("not done"))),
      h("td", { class: "time" }, timeCell(call.initialized_at)),
      h("td", { class: "findings-cell" }, severityBadge(findings))));
    if (open) rows.push(callDetail(call, findings, detailId));
  }
  keepFocus(() => body.replaceChildren(...rows));
  $("calls-empty").hidden = calls.length > 0;
  $("calls-empty").textContent = state.filter && state.calls.length
    ? "No call matches the filter."
    : "No calls yet. Point a PBX at the endpoint above, or send a newCall with curl.";
}

function callDetail(call, findings, detailId) {
  const answer = newCallAnswer(call.call_id);
  const facts = h("dl", { class: "facts" });
  const fact = (term, ...value) => facts.append(h("dt", {}, term), h("dd", {}, ...value));
  fact("call ID", h("code", {}, String(call.call_id)), " ",
    state.filter === String(call.call_id) ? null : h("button", {
      type: "button", class: "btn btn-link", onclick: () => setFilter(String(call.call_id)),
      "aria-label": `Show only call ${call.call_id}`,
    }, "show only this call"));
  fact("direction", call.direction === "in" ? "inbound" : call.direction === "out" ? "outbound" : show(call.direction));
  if (answer && Object.keys(answer).length) fact("answer to newCall", h("code", {}, JSON.stringify(answer)));
  fact("cause", show(call.comment) || "—");
  fact("rang at", timeCell(call.initialized_at, true));
  fact("answered at", call.start_at ? timeCell(call.start_at, true) : "—");
  fact("ended at", call.end_at ? timeCell(call.end_at, true) : "—");
  if (call.preferences && Object.keys(call.preferences).length) {
    fact("caller identification", h("pre", { class: "json small" }, pretty(call.preferences)));
  }

  const events = h("ol", { class: "events" });
  for (const entry of requestsOf(call.call_id)) {
    events.append(h("li", {},
      timeCell(entry.time, true), " ",
      h("strong", {}, show(entry.event) || "?"), " ",
      statusPill(entry.status), " ",
      h("span", { class: "answer-summary" }, answerSummary(entry))));
  }
  if (!events.children.length) events.append(h("li", { class: "muted" }, "not in the journal any more"));

  return h("tr", { class: "detail", id: detailId },
    h("td", { colspan: 12 },
      h("div", { class: "detail-grid" },
        h("section", { class: "detail-block" }, h("h3", {}, "Call"), facts),
        h("section", { class: "detail-block" },
          h("h3", {}, `Findings (${findings.length})`),
          findings.length ? findingList(findings, true) : h("p", { class: "muted" }, "Nothing wrong with this call.")),
        h("section", { class: "detail-block" }, h("h3", {}, "Events"), events))));
}

// Rendering: journal --------------------------------------------------------

function statusClass(status) {
  if (status === null || status === undefined) return "none";
  if (status < 400) return "ok";
  if (status < 500) return "client";
  return "server";
}

function statusPill(status) {
  const cls = statusClass(status);
  return h("span", { class: `status status-${cls}` }, status === null || status === undefined ? "no answer" : String(status));
}

function answerSummary(entry) {
  const answer = entry.answer;
  if (entry.status === null || entry.status === undefined) return entry.reason || "connection dropped";
  if (answer && typeof answer === "object") {
    if (answer.action === "dial") return `dial ${show(answer.number)} as ${show(answer.caller_id)}`;
    if (answer.action === "reject") return `reject (${show(answer.reason)})`;
    if (answer.error) return show(answer.error);
    if (!Object.keys(answer).length) return "{}";
  }
  return JSON.stringify(answer);
}

function findingChips(findings) {
  if (!findings.length) return h("span", { class: "none" }, "—");
  const wrap = h("span", { class: "chips" });
  const shown = findings.slice(0, 3);
  for (const finding of shown) {
    wrap.append(h("span", { class: `chip sev-${finding.severity}`, title: finding.message },
      hidden(`${finding.severity}: `), finding.code));
  }
  if (findings.length > shown.length) wrap.append(h("span", { class: "chip chip-more" }, `+${findings.length - shown.length}`));
  return wrap;
}

function renderJournal() {
  const body = $("journal-body");
  const entries = state.journal.filter((e) => matchesFilter(e.call_id)).reverse();
  const rows = [];
  for (const entry of entries) {
    const key = String(entry.id);
    const open = state.openRequests.has(key);
    const detailId = `request-detail-${entry.id}`;
    const findings = entry.findings || [];
    const classes = ["request", `status-row-${statusClass(entry.status)}`];
    if (open) classes.push("is-open");
    const direction = entry.params?.direction;
    rows.push(h("tr", { class: classes.join(" "), dataset: { requestId: key, callId: entry.call_id ?? "" } },
      h("td", { class: "col-toggle" },
        h("button", {
          type: "button", class: "toggle", "aria-expanded": String(open), "aria-controls": detailId,
          "aria-label": `Parameters and answer of request ${key}`, dataset: { key: `request:${key}` },
          onclick: () => toggle(state.openRequests, key),
        }, h("span", { "aria-hidden": "true" }, "▸"))),
      h("td", { class: "num muted" }, key),
      h("td", { class: "time" }, timeCell(entry.time, true)),
      h("td", { class: "request-cell" },
        h("span", { class: "method" }, entry.method), " ",
        h("span", { class: "encoding" }, entry.encoding || "unparsed"),
        entry.token_valid ? null : h("span", { class: "tag tag-missed", title: "the URL's token is not the configured one" }, "wrong token")),
      h("td", { class: "event" },
        direction === "in" || direction === "out"
          ? h("span", { class: `dir dir-${direction}`, title: direction === "in" ? "inbound" : "outbound" },
            h("span", { "aria-hidden": "true" }, direction === "in" ? "↙" : "↗"))
          : null,
        show(entry.event) || h("span", { class: "muted" }, "—")),
      h("td", { class: "call-id" }, entry.call_id === null || entry.call_id === undefined
        ? h("span", { class: "muted" }, "—")
        : h("button", {
          type: "button", class: "btn btn-link mono", title: "show only this call",
          "aria-label": `Show only call ${entry.call_id}`, dataset: { key: `filter:${key}` },
          onclick: () => setFilter(String(entry.call_id)),
        }, String(entry.call_id))),
      h("td", {}, statusPill(entry.status)),
      h("td", { class: "answer" },
        h("span", { class: "answer-summary", title: answerSummary(entry) }, answerSummary(entry)),
        entry.fault ? h("span", { class: "tag tag-fault", title: JSON.stringify(entry.fault) }, `fault: ${entry.fault.kind}`) : null),
      h("td", { class: "num" }, entry.duration_ms === null || entry.duration_ms === undefined ? "" : entry.duration_ms.toFixed(1)),
      h("td", { class: "findings-cell" }, findingChips(findings))));
    if (open) rows.push(requestDetail(entry, findings, detailId));
  }
  keepFocus(() => body.replaceChildren(...rows));
  $("journal-empty").hidden = entries.length > 0;
  $("journal-empty").textContent = state.filter && state.journal.length ? "No request matches the filter." : "No requests yet.";
}

function requestDetail(entry, findings, detailId) {
  const repeated = new Set(entry.repeated_keys || []);
  const params = h("table", { class: "params" },
    h("caption", { class: "visually-hidden" }, "Parsed parameters"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "parameter"), h("th", { scope: "col" }, "value"))));
  const paramBody = h("tbody");
  for (const [name, value] of Object.entries(entry.params || {})) {
    paramBody.append(h("tr", {},
      h("th", { scope: "row" }, h("code", {}, name),
        repeated.has(name) ? h("span", { class: "tag tag-warn", title: "sent several times without []" }, "repeated") : null),
      h("td", {}, h("code", { class: "value" }, show(value)))));
  }
  if (!paramBody.children.length) paramBody.append(h("tr", {}, h("td", { colspan: 2, class: "muted" }, "no parameters")));
  params.append(paramBody);

  const request = h("dl", { class: "facts" });
  const fact = (term, ...value) => request.append(h("dt", {}, term), h("dd", {}, ...value));
  fact("path", h("code", {}, show(entry.path)));
  fact("content type", h("code", {}, show(entry.content_type) || "—"));
  fact("token", entry.token_valid ? "valid" : "wrong (401)");
  fact("reason", show(entry.reason) || "—");
  if (entry.fault) fact("fault", h("code", {}, JSON.stringify(entry.fault)));

  const answer = h("div", {},
    h("pre", { class: "json" }, entry.status === null || entry.status === undefined ? "(no answer sent)" : pretty(entry.answer)));
  if (entry.details && Object.keys(entry.details).length) {
    answer.append(h("h4", {}, "Details"), h("pre", { class: "json small" }, pretty(entry.details)));
  }

  return h("tr", { class: "detail", id: detailId },
    h("td", { colspan: 10 },
      h("div", { class: "detail-grid" },
        h("section", { class: "detail-block" }, h("h3", {}, "Parameters"), params),
        h("section", { class: "detail-block" },
          h("h3", {}, "Answer ", statusPill(entry.status)), answer, request),
        h("section", { class: "detail-block" },
          h("h3", {}, `Findings (${findings.length})`),
          findings.length ? findingList(findings, false) : h("p", { class: "muted" }, "Nothing wrong with this request.")))));
}

// Interaction ---------------------------------------------------------------

/** Re-render without losing the keyboard focus of a button that is drawn again. */
function keepFocus(render) {
  const key = document.activeElement?.dataset?.key;
  render();
  if (key) document.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

function toggle(set, key) {
  if (set.has(key)) set.delete(key);
  else set.add(key);
  renderAll();
}

function setFilter(value, { fromInput = false } = {}) {
  state.filter = value.trim();
  if (!fromInput) $("filter").value = state.filter;
  $("filter-clear").hidden = !state.filter;
  $("filter-banner").hidden = !state.filter;
  $("filter-value").textContent = state.filter;
  history.replaceState(null, "", state.filter ? `#call=${encodeURIComponent(state.filter)}` : location.pathname + location.search);
  renderAll();
}

function setPaused(paused) {
  state.paused = paused;
  const button = $("pause");
  button.setAttribute("aria-pressed", String(paused));
  button.textContent = paused ? "Resume" : "Pause";
  button.setAttribute("aria-label", paused ? "Resume live updates" : "Pause live updates");
  if (paused) setLive("paused", "Paused");
  else poll();
}

function setLive(kind, text) {
  const live = $("live");
  if (live.dataset.state !== kind || $("live-text").textContent !== text) {
    live.dataset.state = kind;
    $("live-text").textContent = text;
  }
  live.title = kind === "live" ? `updated ${new Date().toLocaleTimeString()}` : "";
}

function announce(message) {
  const announcer = $("announcer");
  announcer.textContent = "";
  // A fresh text node so that screen readers read it even when it repeats.
  requestAnimationFrame(() => { announcer.textContent = message; });
}

async function resetMock() {
  if (!window.confirm("Reset the mock? This clears its caller log, journal and findings.")) return;
  const button = $("reset");
  button.disabled = true;
  try {
    const response = await fetchJson(URLS.reset, { method: "POST" });
    if (response.status !== "reset") throw new Error("unexpected answer");
    clearLocal();
    announce("The mock was reset.");
    await poll();
  } catch (error) {
    announce(`Reset failed: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function clearLocal() {
  state.generation += 1;
  state.signature = null;
  state.lastId = 0;
  state.journal = [];
  state.calls = [];
  state.findings = [];
  state.seenFindings = 0;
  state.openCalls.clear();
  state.openRequests.clear();
  renderAll();
}

// Polling -------------------------------------------------------------------

async function fetchJson(url, options = {}) {
  const controller = new AbortController();
  const timeout = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    const response = await fetch(url, { cache: "no-store", credentials: "same-origin", ...options, signal: controller.signal });
    if (!response.ok) throw new Error(`${url.pathname} answered ${response.status}`);
    return await response.json();
  } catch (error) {
    throw error.name === "AbortError" ? new Error(`${url.pathname} did not answer`) : error;
  } finally {
    clearTimeout(timeout);
  }
}

/**
 * The journal from the newest entry the page holds on (``after=lastId-1``):
 * when that entry is not the first one back, the mock was reset (ids are
 * never reused) or more came than the page keeps, and the page starts over.
 */
function requestsUrl() {
  const url = new URL(URLS.requests);
  url.searchParams.set("limit", String(JOURNAL_KEEP));
  if (state.lastId) url.searchParams.set("after", String(state.lastId - 1));
  return url;
}

/** One poll now; the next one a second after it ends (never two at once). */
async function poll() {
  clearTimeout(state.timer);
  if (state.paused) return;
  if (state.inFlight) {
    state.again = true;
    return state.inFlight;
  }
  state.inFlight = pollOnce();
  try {
    await state.inFlight;
  } finally {
    state.inFlight = null;
  }
  if (state.again) {
    state.again = false;
    return poll();
  }
  if (!state.paused) state.timer = setTimeout(poll, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
}

async function pollOnce() {
  try {
    const generation = state.generation;
    const [health, requests, log, findings] = await Promise.all([
      fetchJson(URLS.health), fetchJson(requestsUrl()), fetchJson(URLS.callerLog), fetchJson(URLS.findings),
    ]);
    // Paused meanwhile, or reset from this page: these answers are stale.
    if (state.paused || generation !== state.generation) return;
    let entries = requests.requests || [];
    if (state.lastId) {
      if (entries.length && entries[0].id === state.lastId) {
        entries = entries.slice(1);
      } else {
        clearLocal();
      }
    }
    if (entries.length) {
      state.journal = state.journal.concat(entries).slice(-JOURNAL_KEEP);
      state.lastId = entries[entries.length - 1].id;
    }
    state.counts = { requests: health.requests, calls: health.calls };
    state.calls = log.list || [];
    state.findings = findings.findings || [];
    const wasLoaded = state.loaded;
    state.loaded = true;
    const signature = dataSignature();
    if (signature !== state.signature) {
      state.signature = signature;
      renderAll();
    }
    if (wasLoaded) announceNews(entries);
    state.seenFindings = state.findings.length;
    setLive("live", "Live");
  } catch (error) {
    setLive("offline", `Offline, retrying (${error.message})`);
  }
}

/** Cheap fingerprint of what the server sent: draw again only when it changed. */
function dataSignature() {
  const last = state.findings[state.findings.length - 1];
  const overdue = state.findings.filter((f) => f.id === null).map((f) => f.call_id);
  return JSON.stringify([state.lastId, state.journal.length, state.calls, state.findings.length, last?.id, overdue]);
}

function announceNews(fresh) {
  const parts = [];
  if (fresh.length) parts.push(plural(fresh.length, ["new request", "new requests"]));
  const newFindings = state.findings.slice(state.seenFindings);
  if (newFindings.length > 0) {
    parts.push(`${plural(newFindings.length, ["new finding", "new findings"])}: ${[...new Set(newFindings.map((f) => f.code))].join(", ")}`);
  }
  if (parts.length) announce(parts.join("; "));
}

function renderAll() {
  renderSummary();
  renderCalls();
  renderJournal();
}

/** The waiting or talking time of calls still ringing or talking, every second. */
function tickDurations() {
  if (!state.paused) {
    for (const cell of document.querySelectorAll("td.live-duration")) {
      cell.textContent = duration(secondsSince(cell.dataset.since));
    }
  }
  setTimeout(tickDurations, 1000);
}

function start() {
  $("endpoint").textContent = `POST ${URLS.endpoint.pathname}<token>`;
  $("filter-form").addEventListener("submit", (event) => event.preventDefault());
  $("filter").addEventListener("input", (event) => setFilter(event.target.value, { fromInput: true }));
  $("filter-clear").addEventListener("click", () => { setFilter(""); $("filter").focus(); });
  $("filter-banner-clear").addEventListener("click", () => setFilter(""));
  $("pause").addEventListener("click", () => setPaused(!state.paused));
  $("reset").addEventListener("click", resetMock);
  document.addEventListener("visibilitychange", () => { if (!document.hidden && !state.paused) poll(); });

  const match = /^#call=(.*)$/.exec(location.hash);
  if (match) setFilter(decodeURIComponent(match[1]));
  else renderAll();
  poll();
  tickDurations();
}

start();
