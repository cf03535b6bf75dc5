// The voxbus operator console: live calls from the server-sent feed, one call's transcript and
// turns, the step-in actions, and the day's KPIs. No framework and nothing fetched from outside.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { me: null, calls: [], selected: null, lines: new Map(), feed: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(child);
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status}`);
  return body;
}

async function start() {
  try { state.me = await api("/api/me"); } catch { state.me = null; }
  $("login").hidden = !!state.me;
  $("app").hidden = !state.me;
  if (!state.me) return;
  $("who").textContent = `${state.me.name} (${state.me.role})`;
  document.querySelectorAll(".supervisor-only").forEach((n) => { n.hidden = state.me.role !== "supervisor"; });
  openFeed();
  loadKpis();
  setInterval(tickDurations, 1000);
  setInterval(loadKpis, 30000);
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  try {
    await api("/login", { method: "POST", body: new FormData($("login")) });
    start();
  } catch (err) { $("login-error").textContent = err.message; }
});

function openFeed() {
  state.feed = new EventSource("/api/feed");
  state.feed.onmessage = (m) => {
    const message = JSON.parse(m.data);
    if (message.kind === "calls") showCalls(message.calls);
    else if (message.kind === "event") {
      if (message.event.type === "transfer.summary") showHandover(message.event);
      onEvent(message.event);
      if (["turn.metrics", "call.ended"].includes(message.event.type)) kpisSoon();
    }
  };
}

// a warm transfer's note, shown to everyone watching before the person's phone rings
function showHandover(e) {
  $("handover-caller").textContent = party(e.caller);
  $("handover-target").textContent = `to ${e.target ? party(e.target) : "the queue"}, asked by ${e.requested_by}`;
  $("handover-summary").textContent = e.summary;
  $("handover").hidden = false;
}
$("handover-close").addEventListener("click", () => { $("handover").hidden = true; });

// --- live calls ---------------------------------------------------------------------------------
function showCalls(calls) {
  state.calls = calls;
  const body = $("calls").querySelector("tbody");
  body.replaceChildren(...calls.map((c) => {
    const row = el("tr", { "data-call": c.call_id },
      el("td", {}, party(c.caller)), el("td", {}, party(c.called)), el("td", {}, c.agent || "default"),
      el("td", {}, el("span", { class: `state ${c.state}` }, c.state)),
      el("td", { class: "duration", "data-started": c.started }, ""),
      el("td", {}, c.last_latency_ms == null ? "—" : `${Math.round(c.last_latency_ms)} ms`));
    if (c.call_id === state.selected) row.classList.add("selected");
    row.addEventListener("click", () => select(c.call_id));
    return row;
  }));
  $("calls-count").textContent = calls.length;
  $("no-calls").hidden = calls.length > 0;
  tickDurations();
}

// "<sip:+4420@pbx>" or "Ann <sip:ann@pbx>" -> "+4420@pbx", as an operator reads a number
function party(uri) {
  if (!uri) return "—";
  const match = /<?sips?:([^>;]+)>?/.exec(uri);
  return match ? match[1] : uri;
}

function tickDurations() {
  const now = Date.now() / 1000;
  document.querySelectorAll("td.duration").forEach((td) => {
    const s = Math.max(0, Math.round(now - Number(td.dataset.started)));
    td.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  });
}

// --- one call -----------------------------------------------------------------------------------
async function select(callId) {
  if (listen.callId && listen.callId !== callId) stopListening();
  state.selected = callId;
  state.lines = new Map();
  state.loading = [];  // feed events of this call that arrive while its record loads
  state.loadedUntil = 0;
  $("call").hidden = false;
  $("call-title").textContent = callId;
  $("transcript").replaceChildren();
  $("turns").replaceChildren();
  $("message").textContent = "";
  $("call-status").textContent = "";
  showCalls(state.calls);
  try {
    const record = await api(`/api/calls/${encodeURIComponent(callId)}`);
    if (state.selected !== callId) return;
    for (const line of record.transcript) addLine(line.speaker, line.text, line.mark, line.gen);
    for (const turn of record.turns) addTurn({ vad: turn.vad_ms, stt: turn.stt_ms, llm: turn.llm_ms, tts: turn.tts_ms, audio: turn.first_audio_ms });
    state.loadedUntil = Math.max(0, ...record.transcript.map((l) => l.ts), ...record.turns.map((t) => t.ts));
  } catch { /* not recorded yet: the feed fills it in */ }
  if (state.selected !== callId) return;
  const waiting = state.loading;
  state.loading = null;
  waiting.forEach(onEvent);  // what the record already held is skipped by its time
}

function addLine(speaker, text, mark = "", gen = null) {
  const key = speaker === "agent" && gen != null ? `agent-${gen}` : null;
  if (key && state.lines.has(key)) {
    const text_node = state.lines.get(key).querySelector(".text");
    text_node.textContent = `${text_node.textContent} ${text}`;
    return;
  }
  const line = el("div", { class: `line ${speaker.split(" ")[0]} ${mark}` },
    el("span", { class: "who" }, speaker), el("span", { class: "text" }, text));
  if (key) state.lines.set(key, line);
  $("transcript").append(line);
  $("transcript").scrollTop = $("transcript").scrollHeight;
}

function onEvent(e) {
  if (e.call_id !== state.selected) return;
  if (state.loading) { state.loading.push(e); return; }
  if (e.ts <= state.loadedUntil) return;
  switch (e.type) {
    case "stt.final": if (e.text.trim()) addLine("caller", e.text.trim()); break;
    case "tts.requested": if (e.text.trim()) addLine("agent", e.text.trim(), "", e.gen); break;
    case "barge_in": {
      if (e.decision === "interrupt") state.lines.get(`agent-${e.gen}`)?.classList.add("interrupted");
      else if (e.text) addLine("caller", e.text, "backchannel");
      break;
    }
    case "tool.called": addLine("tool", `${e.name}…`, "tool"); break;
    case "tool.result": addLine("tool", `${e.name}: done`, "tool"); break;
    case "tool.failed": addLine("tool", `${e.name}: ${e.failure}`, "tool"); break;
    case "transfer.summary": addLine("handover", e.summary, "transfer"); break;
    case "transfer.returned": addLine("handover", `transfer not answered (${e.code} ${e.reason}): back to the agent`.replace(" )", ")"), "transfer"); break;
    case "operator.acted": addLine(`operator ${e.operator}`, `${e.action} ${e.text}`.trim() + (e.ok ? "" : ` (refused: ${e.reason})`), "operator"); break;
    case "turn.metrics": addTurn({ vad: e.vad_decision_ms, stt: e.stt_final_ms, llm: e.llm_first_token_ms, tts: e.tts_first_frame_ms, audio: e.first_audio_ms }); break;
    case "call.ended": $("call-status").textContent = `The call ended (${e.cause}).`; break;
  }
}

function addTurn(t) {
  if (t.audio == null) return;
  const scale = 100 / Math.max(t.audio, 1500);
  const stages = [["vad", t.vad], ["stt", t.stt], ["llm", t.llm], ["tts", t.tts], ["play", t.audio]];
  let before = 0;
  const parts = [];
  for (const [name, at] of stages) {
    if (at == null || at < before) continue;
    parts.push(el("i", { class: name, style: `width:${(at - before) * scale}%`, title: `${name} ${Math.round(at - before)} ms` }));
    before = at;
  }
  $("turns").append(el("div", { class: "turn" }, el("span", {}, `${Math.round(t.audio)} ms`), el("div", { class: "bar" }, ...parts)));
}

document.querySelectorAll("#actions button").forEach((button) => button.addEventListener("click", async () => {
  const input = button.dataset.input ? $(button.dataset.input) : null;
  const body = input ? JSON.stringify({ text: input.value }) : "{}";
  $("message").className = "";
  try {
    await api(`/api/calls/${encodeURIComponent(state.selected)}/${button.dataset.action}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body });
    $("message").textContent = `${button.dataset.action}: done`;
    if (input) input.value = "";
  } catch (err) {
    $("message").className = "error";
    $("message").textContent = `${button.dataset.action}: ${err.message}`;
  }
}));

// --- listening in: both sides, as records of a side byte (0 caller, 1 agent) + 20 ms of PCM16 at 16 kHz
const RECORD = 1 + 640;
const listen = { ctx: null, reader: null, callId: null, next: [0, 0], frames: [0, 0] };
window.voxbusListen = listen;  // what the page has received, for the browser test

async function startListening(callId) {
  stopListening();
  listen.ctx = listen.ctx || new AudioContext({ sampleRate: 16000 });
  await listen.ctx.resume();
  const response = await fetch(`/api/calls/${encodeURIComponent(callId)}/listen`, { credentials: "same-origin" });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `${response.status}`);
  }
  listen.callId = callId;
  listen.reader = response.body.getReader();
  $("listen").textContent = "Stop listening";
  $("listen-status").textContent = "listening: caller and agent";
  let pending = new Uint8Array(0);
  for (;;) {
    const { value, done } = await listen.reader.read().catch(() => ({ done: true }));
    if (done) break;
    const joined = new Uint8Array(pending.length + value.length);
    joined.set(pending);
    joined.set(value, pending.length);
    let at = 0;
    for (; at + RECORD <= joined.length; at += RECORD) play(joined[at], joined.slice(at + 1, at + RECORD));
    pending = joined.slice(at);
  }
  if (listen.callId === callId) stopListening();
}

function stopListening() {
  if (listen.reader) listen.reader.cancel().catch(() => {});
  listen.reader = null;
  listen.callId = null;
  $("listen").textContent = "Listen in";
  $("listen-status").textContent = "";
}

// each side plays on its own schedule, 150 ms behind, so that network jitter does not click
function play(side, bytes) {
  if (side > 1) return;
  listen.frames[side] += 1;
  const samples = new Int16Array(bytes.buffer);
  const buffer = listen.ctx.createBuffer(1, samples.length, 16000);
  const data = buffer.getChannelData(0);
  for (let i = 0; i < samples.length; i++) data[i] = samples[i] / 32768;
  const source = listen.ctx.createBufferSource();
  source.buffer = buffer;
  source.connect(listen.ctx.destination);
  const now = listen.ctx.currentTime;
  const at = listen.next[side] < now + 0.02 ? now + 0.15 : listen.next[side];
  source.start(at);
  listen.next[side] = at + buffer.duration;
}

$("listen").addEventListener("click", () => {
  if (listen.reader) return stopListening();
  startListening(state.selected).catch((err) => {
    $("listen-status").textContent = `listen: ${err.message}`;
  });
});

// --- KPIs ---------------------------------------------------------------------------------------
const KPI_SHOWN = [
  ["calls", "Calls", (v) => v], ["avg_handling_s", "Avg handling", (v) => `${v.toFixed(0)} s`],
  ["resolution_rate", "Resolved", pct], ["transfer_rate", "Transferred", pct], ["abandoned", "Abandoned", (v) => v],
  ["barge_ins_per_call", "Barge-ins / call", (v) => v.toFixed(1)],
  ["latency_p50_ms", "Latency p50", (v) => `${Math.round(v)} ms`], ["latency_p95_ms", "Latency p95", (v) => `${Math.round(v)} ms`],
  ["cpu_s_per_call", "CPU / call", (v) => `${v.toFixed(0)} s`], ["cost_per_call", "Cost / call", (v) => v.toFixed(4)],
];
function pct(v) { return `${(100 * v).toFixed(0)} %`; }

let kpiTimer = null;
function kpisSoon() {  // a turn answered or a call ended: the numbers move, at most every 2 s
  if (kpiTimer === null) kpiTimer = setTimeout(() => { kpiTimer = null; loadKpis(); }, 2000);
}

async function loadKpis() {
  let data;
  try { data = await api(`/api/kpi?since=${Date.now() / 1000 - 86400}`); } catch { return; }
  $("kpi-cards").replaceChildren(...KPI_SHOWN.map(([key, label, show]) =>
    el("div", { class: "card", "data-kpi": key }, el("b", {}, data.kpis[key] == null ? "—" : String(show(data.kpis[key]))), label)));
  drawLatency(data.turns.filter((t) => t.first_audio_ms != null));
}

function drawLatency(turns) {
  const svg = $("latency-chart");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  if (!turns.length) return;
  const top = Math.max(1000, ...turns.map((t) => t.first_audio_ms));
  const w = 600 / turns.length;
  turns.forEach((t, i) => {
    const h = (t.first_audio_ms / top) * 150;
    const bar = document.createElementNS(ns, "rect");
    bar.setAttribute("x", i * w + 1); bar.setAttribute("width", Math.max(w - 2, 1));
    bar.setAttribute("y", 160 - h); bar.setAttribute("height", h);
    bar.setAttribute("fill", t.first_audio_ms <= 700 ? "#57c48a" : "#f5a623");
    svg.append(bar);
  });
}

start();
