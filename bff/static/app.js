// Switchboard chat page: plain ES2020, no framework, no external assets.
//
// The page talks to the BFF only:
//   GET  /v1/agents                  the sidebar
//   GET  /v1/conversations/{id}      earlier turns, on load (once something was asked in it)
//   POST /v1/chat/stream             one question, followed live (Server-Sent Events)
// Everything that comes from the server is written with textContent, never as HTML.
"use strict";

(() => {
  const MAX_MESSAGE_CHARS = 32000; // the server's limit (it answers 400 above it)
  const KEY_STORAGE = "switchboard.apiKey";
  // sessionStorage: one conversation per browser tab, kept across reloads of that tab.
  const CONVERSATION_STORAGE = "switchboard.conversationId";
  // The conversation of this tab in which a question was sent: only it has a history.
  const STARTED_STORAGE = "switchboard.startedConversationId";

  const $ = (id) => document.getElementById(id);
  const ui = {
    mode: $("mode"),
    keyToggle: $("key-toggle"),
    keyPanel: $("key-panel"),
    keyForm: $("key-form"),
    keyInput: $("api-key"),
    forgetKey: $("forget-key"),
    newConversation: $("new-conversation"),
    agents: $("agents"),
    agentsStatus: $("agents-status"),
    conversationId: $("conversation-id"),
    banner: $("error-banner"),
    bannerTitle: $("error-title"),
    bannerDetail: $("error-detail"),
    bannerCorrelation: $("error-correlation"),
    bannerClose: $("error-close"),
    log: $("log"),
    empty: $("empty"),
    status: $("status"),
    composer: $("composer"),
    message: $("message"),
    counter: $("counter"),
    send: $("send"),
    stop: $("stop"),
    turnTemplate: $("turn-template"),
    stepTemplate: $("step-template"),
  };

  const state = {
    apiKey: readStorage(localStorage, KEY_STORAGE),
    conversationId: null,
    controller: null, // AbortController of the request in flight, if any
    busy: false, // a question is being answered
  };

  // -- small helpers ---------------------------------------------------------------------

  // Storage can throw (privacy modes, disabled cookies): the page still works without it.
  function readStorage(storage, key) {
    try {
      return storage.getItem(key) || "";
    } catch {
      return "";
    }
  }

  function writeStorage(storage, key, value) {
    try {
      if (value) storage.setItem(key, value);
      else storage.removeItem(key);
    } catch {
      /* not persisted; fine for this tab */
    }
  }

  // crypto.randomUUID only exists in secure contexts; http://<lan-ip> is not one.
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function formatDuration(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "";
    if (ms < 1000) return `${Math.max(ms, 0).toFixed(ms < 10 ? 1 : 0)} ms`;
    return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  }

  function formatTime(unixSeconds) {
    const date = new Date(unixSeconds * 1000);
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // Progress details can be anything JSON; show strings as they are, the rest compactly.
  function describe(detail) {
    if (detail == null) return "";
    if (typeof detail === "string") return detail;
    if (typeof detail.message === "string") return detail.message;
    return JSON.stringify(detail);
  }

  // A large output travels once, in the reply's answer; events (and the reply's steps,
  // when the answer holds it) carry a preview: its first characters and its whole size.
  function previewed(text, truncated, size) {
    return truncated ? `${text}… (${formatBytes(size)} in all)` : text;
  }

  function formatBytes(size) {
    if (!(size > 0)) return "?";
    return size < 1024 ? `${size} B` : `${Math.round(size / 1024).toLocaleString()} KiB`;
  }

  function announce(text) {
    ui.status.textContent = text;
  }

  // -- HTTP ------------------------------------------------------------------------------

  /** A failed call, carrying the server's problem body (title, detail, code, status, ...). */
  class ProblemError extends Error {
    constructor(problem) {
      super(problem.detail || problem.title);
      this.problem = problem;
    }
  }

  function authHeaders(extra = {}) {
    const headers = { Accept: "application/json, application/problem+json", ...extra };
    if (state.apiKey) headers.Authorization = `Bearer ${state.apiKey}`;
    return headers;
  }

  // Non-2xx answers are application/problem+json; anything else (a proxy's HTML page...)
  // still becomes a readable problem.
  async function readProblem(response) {
    let body = {};
    try {
      body = await response.json();
    } catch {
      /* not JSON */
    }
    const problem = {
      title: body.title || `HTTP ${response.status}`,
      detail: body.detail || response.statusText || "The server refused the request.",
      code: body.code || "",
      status: body.status || response.status,
      correlation_id: body.correlation_id || response.headers.get("X-Correlation-Id") || "",
    };
    const retry = response.headers.get("Retry-After");
    if (retry) problem.detail += ` (retry after ${retry} s)`;
    return problem;
  }

  function networkProblem(error) {
    return {
      title: "Cannot reach the server",
      detail: `${error.message || error}. Is switchboard still running?`,
      code: "network",
      status: 0,
      correlation_id: "",
    };
  }

  async function request(path, options = {}) {
    let response;
    try {
      response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ProblemError(networkProblem(error));
    }
    if (!response.ok) throw new ProblemError(await readProblem(response));
    return response;
  }

  async function getJson(path) {
    const response = await request(path);
    return response.json();
  }

  // -- Server-Sent Events over fetch (EventSource cannot POST) ----------------------------

  /** Yields {event, data} for each complete event of a text/event-stream body. */
  async function* readEvents(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let name = "";
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return; // an unterminated last event is dropped, as the SSE spec says
      buffer += decoder.decode(value, { stream: true });
      // A chunk may end between "\r" and "\n": keep a trailing "\r" for the next round,
      // or it would count as two line ends (and a spurious blank line).
      const cut = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
      const lines = buffer.slice(0, cut).split(/\r\n|\r|\n/);
      buffer = lines.pop() + buffer.slice(cut);
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { event: name || "message", data: data.join("\n") };
          name = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue; // a comment / keep-alive
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      }
    }
  }

  // -- the error banner ------------------------------------------------------------------

  function showError(problem) {
    ui.bannerTitle.textContent = problem.status
      ? `${problem.title} (${problem.status})`
      : problem.title;
    ui.bannerDetail.textContent = problem.detail || "";
    const meta = [];
    if (problem.code) meta.push(`code: ${problem.code}`);
    if (problem.correlation_id) meta.push(`correlation id: ${problem.correlation_id}`);
    ui.bannerCorrelation.textContent = meta.join(" · ");
    ui.banner.hidden = false;
    if (problem.status === 401) openKeyPanel(true);
  }

  function clearError() {
    ui.banner.hidden = true;
  }

  // -- the API key -----------------------------------------------------------------------

  function openKeyPanel(open) {
    ui.keyPanel.hidden = !open;
    ui.keyToggle.hidden = !open && !state.apiKey;
    ui.keyToggle.setAttribute("aria-expanded", String(open));
    if (open) {
      ui.keyInput.value = state.apiKey;
      ui.keyInput.focus();
    }
  }

  function saveKey(key) {
    state.apiKey = key.trim();
    writeStorage(localStorage, KEY_STORAGE, state.apiKey);
    openKeyPanel(false);
    clearError();
    loadAgents().then((ok) => ok && restoreHistory());
  }

  // -- the mode badge and the agents sidebar ----------------------------------------------

  function setMode() {
    ui.mode.hidden = false;
    ui.mode.textContent = state.apiKey ? "API key" : "local mode";
  }

  function renderAgents(agents) {
    ui.agents.replaceChildren();
    for (const agent of agents) {
      const item = document.createElement("li");
      item.className = "agent";
      item.dataset.testid = "agent";
      item.dataset.agent = agent.name;

      const head = document.createElement("div");
      head.className = "agent-head";
      const name = document.createElement("span");
      name.className = "agent-name";
      name.textContent = agent.name;
      const instances = document.createElement("span");
      const count = Number(agent.instances) || 0;
      instances.className = count ? "instances" : "instances offline";
      instances.textContent = count === 1 ? "1 instance" : `${count} instances`;
      head.append(name, instances);

      const description = document.createElement("p");
      description.className = "agent-description";
      description.textContent = agent.description || "";
      description.title = agent.description || "";

      item.append(head, description);
      ui.agents.append(item);
    }
    ui.agentsStatus.textContent = agents.length ? "" : "No agent is online.";
    ui.agentsStatus.hidden = agents.length > 0;
  }

  async function loadAgents() {
    ui.agentsStatus.hidden = false;
    ui.agentsStatus.textContent = "Loading…";
    try {
      renderAgents(await getJson("/v1/agents"));
      setMode();
      return true;
    } catch (error) {
      const problem = error.problem || networkProblem(error);
      ui.agentsStatus.textContent = `Unavailable: ${problem.detail}`;
      if (problem.status === 401) {
        // The first visit to a server with keys: ask for one, without a scary banner.
        ui.agentsStatus.textContent = "An API key is needed.";
        if (state.apiKey) showError(problem);
        else openKeyPanel(true);
      } else {
        showError(problem);
      }
      return false;
    }
  }

  // -- the conversation ------------------------------------------------------------------

  function setConversation(id) {
    state.conversationId = id;
    writeStorage(sessionStorage, CONVERSATION_STORAGE, id);
    ui.conversationId.textContent = id;
  }

  function clearLog() {
    ui.log.replaceChildren(ui.empty);
    ui.empty.hidden = false;
  }

  function startNewConversation() {
    if (state.controller) state.controller.abort();
    setConversation(`web-${uuid()}`);
    clearLog();
    clearError();
    announce("New conversation.");
    ui.message.focus();
  }

  // Earlier turns come back with their steps (turns stored before steps were kept: message
  // and answer only, shown plainly).
  async function restoreHistory() {
    const id = state.conversationId;
    if (readStorage(sessionStorage, STARTED_STORAGE) !== id) return; // nothing asked in it yet
    let history;
    try {
      history = await getJson(`/v1/conversations/${encodeURIComponent(id)}`);
    } catch (error) {
      const problem = error.problem || networkProblem(error);
      if (problem.status !== 404 && problem.status !== 401) showError(problem);
      return; // 404: nothing said yet in this conversation
    }
    // Only into an empty log: a turn asked meanwhile (or a new conversation) wins.
    if (id !== state.conversationId || ui.log.querySelector(".turn")) return;
    for (const turn of history.turns || []) {
      const view = addTurn(turn.message, turn.ts);
      setCorrelation(view, turn.correlation_id);
      renderTurnSteps(view, turn.steps || []);
      setAnswer(view, turn.answer);
      view.root.dataset.state = "done";
    }
    scrollToEnd();
  }

  // -- rendering one turn ----------------------------------------------------------------

  /** Adds a turn (question + pending answer) to the log; returns handles to its parts. */
  function addTurn(message, ts) {
    const root = ui.turnTemplate.content.firstElementChild.cloneNode(true);
    const part = (id) => root.querySelector(`[data-testid="${id}"]`);
    const view = {
      root,
      plan: part("plan"),
      answer: part("answer"),
      correlation: part("correlation-id"),
      correlationWrap: part("correlation-wrap"),
      partial: part("partial"),
      duration: part("duration"),
      durationWrap: part("duration-wrap"),
      steps: new Map(), // step id -> its row's handles
    };
    part("turn-message").textContent = message;
    const time = part("time");
    time.textContent = formatTime(ts);
    time.dateTime = new Date(ts * 1000).toISOString();
    root.dataset.state = "running";
    ui.empty.hidden = true;
    ui.log.append(root);
    return view;
  }

  function setCorrelation(view, id) {
    if (!id) return;
    view.correlation.textContent = id;
    view.correlationWrap.hidden = false;
  }

  function setAnswer(view, text, partial = false) {
    view.answer.classList.remove("pending");
    view.answer.textContent = text; // plain text; CSS keeps the newlines
    view.partial.hidden = !partial;
  }

  function renderPlan(view, plan) {
    view.plan.replaceChildren();
    view.steps.clear();
    appendStepRows(view, plan.steps || [], 1);
  }

  // -- rounds: the engine planned again after reading the results ------------------------

  /** A round's heading for the plan: its number and why it runs. */
  function roundHeading(round, reason) {
    const heading = document.createElement("li");
    heading.className = "round";
    heading.dataset.testid = "round";
    heading.dataset.round = String(round);
    const label = document.createElement("strong");
    label.textContent = `Round ${round}`;
    heading.append(label);
    if (reason) {
      const why = document.createElement("span");
      why.className = "round-reason";
      why.dataset.testid = "round-reason";
      why.textContent = ` · ${reason}`;
      heading.append(why);
    }
    return heading;
  }

  /** Appends step rows (after the rows already shown), each tagged with its round. */
  function appendStepRows(view, steps, round) {
    for (const step of steps) {
      const row = ui.stepTemplate.content.firstElementChild.cloneNode(true);
      const part = (id) => row.querySelector(`[data-testid="${id}"]`);
      row.dataset.step = step.id;
      row.dataset.agent = step.agent;
      row.dataset.round = String(round);
      part("step-id").textContent = step.id;
      part("step-agent").textContent = step.agent;
      part("step-instruction").textContent = step.instruction || "";
      const deps = step.depends_on || [];
      if (deps.length) {
        const deps_ = part("step-deps");
        deps_.hidden = false;
        deps_.textContent = `↳ after ${deps.join(", ")}`;
        deps_.title = `Runs after ${deps.join(", ")} (uses their results)`;
      }
      if (step.required === false) row.classList.add("optional");
      view.steps.set(step.id, {
        row,
        status: part("step-status"),
        note: part("step-note"),
        duration: part("step-duration"),
      });
      view.plan.append(row);
    }
    view.plan.hidden = view.steps.size === 0;
  }

  /** A ``replanned`` event: round 1 gets its heading once, then the new round's steps. */
  function addRound(view, detail) {
    if (!view.plan.querySelector('[data-testid="round"]')) view.plan.prepend(roundHeading(1, ""));
    view.plan.append(roundHeading(detail.round, detail.reason));
    appendStepRows(view, (detail.plan || {}).steps || [], detail.round);
  }

  /** A remembered turn's steps (after a reload), by round, with how each ended. */
  function renderTurnSteps(view, steps) {
    const statuses = { ok: "done", failed: "failed", skipped: "skipped" };
    const rounds = new Set(steps.map((step) => step.round || 1));
    let round = 0;
    for (const step of steps) {
      const stepRound = step.round || 1;
      if (rounds.size > 1 && stepRound !== round) view.plan.append(roundHeading(stepRound, ""));
      round = stepRound;
      appendStepRows(view, [step], stepRound);
      setStep(view, step.id, statuses[step.status] || step.status, step.output || "");
    }
  }

  const STATUS_LABELS = {
    queued: "queued",
    running: "running",
    done: "done",
    failed: "failed",
    skipped: "skipped",
    stopped: "stopped",
  };

  function setStep(view, id, status, note) {
    const step = view.steps.get(id);
    if (!step) return;
    step.row.dataset.status = status;
    step.status.textContent = STATUS_LABELS[status] || status;
    if (note !== undefined) {
      step.note.hidden = !note;
      step.note.textContent = note;
      step.note.title = note;
    }
  }

  // -- nested agent-to-agent calls, under the step that made them ------------------------

  // A call_started / call_finished event: one row per call (its task id; its path, such
  // as "s1>trip>clock", says where), indented by its depth, in a list under its step
  // (created on the first call).
  function renderCall(view, data) {
    const step = view.steps.get(data.step);
    const detail = data.detail || {};
    if (!step || !detail.path) return;
    let list = step.calls;
    if (!list) {
      list = document.createElement("ul");
      list.className = "calls";
      list.dataset.testid = "step-calls";
      list.setAttribute("aria-label", `Calls made by step ${data.step}`);
      step.note.before(list);
      step.calls = list;
      step.callRows = new Map();
    }
    const key = detail.task_id || detail.path;
    let row = step.callRows.get(key);
    if (!row) {
      const agents = detail.path.split(">").slice(1);
      row = document.createElement("li");
      row.className = "call";
      row.dataset.testid = "call-row";
      row.dataset.path = detail.path;
      row.style.setProperty("--depth", String(agents.length - 2));
      const head = document.createElement("span");
      head.className = "call-head mono";
      head.textContent = `${agents[agents.length - 2]} → ${agents[agents.length - 1]}`;
      head.title = detail.path;
      const what = document.createElement("span");
      what.className = "call-instruction";
      what.textContent = detail.instruction || "";
      const note = document.createElement("span");
      note.className = "call-note small";
      note.dataset.testid = "call-note";
      row.append(head, what, note);
      step.callRows.set(key, row);
      list.append(row);
    }
    const note = row.querySelector(".call-note");
    if (data.kind === "call_started") {
      row.dataset.status = "running";
      note.textContent = "running";
    } else if (detail.ok) {
      row.dataset.status = "done";
      note.textContent = `${describe(detail.output)} · ${formatDuration(detail.duration_ms)}`;
    } else {
      row.dataset.status = "failed";
      const error = detail.error || {};
      note.textContent = `${error.code}: ${error.message}`;
    }
    note.title = note.textContent;
  }

  // Marks the steps still queued or running when the request ends without a reply.
  function stopUnfinished(view) {
    for (const [id, step] of view.steps) {
      const status = step.row.dataset.status;
      if (status === "queued" || status === "running") setStep(view, id, "stopped");
    }
  }

  // The reply is the reference: statuses, outputs and durations per step.
  function applyReply(view, reply) {
    const statuses = { ok: "done", failed: "failed", skipped: "skipped" };
    for (const result of reply.steps || []) {
      const note = result.error
        ? `${result.error.code}: ${result.error.message}`
        : previewed(describe(result.output), result.output_truncated, result.output_size);
      setStep(view, result.id, statuses[result.status] || result.status, note);
      const step = view.steps.get(result.id);
      if (step) {
        const attempts = result.attempts > 1 ? ` · ${result.attempts} attempts` : "";
        step.duration.textContent = formatDuration(result.duration_ms) + attempts;
      }
    }
    setCorrelation(view, reply.correlation_id);
    setAnswer(view, reply.answer, reply.partial);
    view.duration.textContent = formatDuration(reply.duration_ms);
    view.durationWrap.hidden = false;
    view.root.dataset.state = reply.partial ? "partial" : "done";
  }

  function failTurn(view, text) {
    stopUnfinished(view);
    view.answer.classList.remove("pending");
    view.answer.classList.add("failed");
    view.answer.textContent = text;
    view.root.dataset.state = "error";
  }

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  // -- streamed text (token events) ---------------------------------------------------------

  // Text being written, per writer: a step (its agent's model), a nested call inside it
  // (its call path), or the answer itself (no step). The answer area shows the answer's
  // own text once it streams, else the writer heard from last; a step's row shows its own.
  function tokenSource(data) {
    const path = data.detail && data.detail.path;
    if (!data.step) return path ? `answer › ${path}` : "answer";
    return path ? `${data.step} › ${path}` : data.step;
  }

  function appendToken(view, data) {
    const text = (data.detail && data.detail.text) || "";
    if (!text) return;
    view.drafts = view.drafts || new Map();
    const source = tokenSource(data);
    const draft = (view.drafts.get(source) || "") + text;
    view.drafts.set(source, draft);
    if (data.step && !(data.detail && data.detail.path)) setStep(view, data.step, "running", draft);
    renderDraft(view, source);
  }

  function renderDraft(view, source) {
    const shown = view.drafts.has("answer") ? "answer" : source;
    view.answer.classList.remove("pending");
    view.answer.classList.add("streaming");
    view.answer.dataset.source = shown;
    view.answer.textContent = view.drafts.get(shown);
  }

  function endDraft(view) {
    view.answer.classList.remove("streaming");
    delete view.answer.dataset.source;
  }

  // -- one question, followed live -------------------------------------------------------

  /** Applies one progress event to the turn; returns true once the turn is over. */
  function handleEvent(view, name, data) {
    switch (name) {
      case "planned":
        renderPlan(view, data.detail || {});
        announce(`Planned ${view.steps.size} step(s).`);
        return false;
      case "step_started":
        setStep(view, data.step, "running", "");
        return false;
      case "step_progress":
        setStep(view, data.step, "running", describe(data.detail));
        return false;
      case "step_finished": {
        const detail = data.detail || {};
        const note = previewed(describe(detail.output), detail.truncated, detail.size);
        setStep(view, data.step, "done", note);
        return false;
      }
      case "step_failed": {
        const detail = data.detail || {};
        const skipped = detail.code === "skipped";
        const note = skipped ? detail.message : `${detail.code}: ${detail.message}`;
        setStep(view, data.step, skipped ? "skipped" : "failed", note);
        return false;
      }
      case "replanned": {
        const detail = data.detail || {};
        addRound(view, detail);
        announce(`Round ${detail.round}: ${((detail.plan || {}).steps || []).length} more step(s).`);
        return false;
      }
      case "token":
        appendToken(view, data);
        return false;
      case "answered":
        // The whole answer comes with the reply, next.
        endDraft(view);
        setAnswer(
          view,
          previewed(data.detail.answer, data.detail.truncated, data.detail.size),
          data.detail.partial,
        );
        return false;
      case "call_started":
      case "call_finished":
        renderCall(view, data);
        return false;
      case "reply":
        endDraft(view);
        applyReply(view, data);
        announce("Answer received.");
        return true;
      case "error":
        endDraft(view);
        showError(data);
        failTurn(view, `No answer: ${data.detail || data.title}`);
        return true;
      default:
        return false; // an event kind this page does not know yet
    }
  }

  // A refused question goes back into an empty composer, so it can be fixed and resent.
  function giveBack(message) {
    if (!ui.message.value) {
      ui.message.value = message;
      updateCounter();
    }
  }

  async function ask(message) {
    clearError();
    const view = addTurn(message, Date.now() / 1000);
    view.answer.textContent = "Planning…";
    scrollToEnd();
    announce("Sent; planning.");
    setBusy(true);
    const controller = new AbortController();
    state.controller = controller;
    // Every chat is a turn of a conversation; the page names its own (the API lets a client
    // name a new one), so it knows the id before the first answer and keeps it on reload.
    const body = { message, conversation_id: state.conversationId };
    writeStorage(sessionStorage, STARTED_STORAGE, state.conversationId);
    try {
      const response = await request("/v1/chat/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      setCorrelation(view, response.headers.get("X-Correlation-Id"));
      let over = false;
      for await (const { event, data } of readEvents(response.body)) {
        over = handleEvent(view, event, JSON.parse(data));
        scrollToEnd();
        if (over) break;
      }
      if (!over) {
        const problem = {
          title: "The answer was cut off",
          detail: "The connection closed before the answer arrived; ask again.",
          status: 0,
          correlation_id: view.correlation.textContent,
        };
        showError(problem);
        failTurn(view, `No answer: ${problem.detail}`);
      }
    } catch (error) {
      if (error.name === "AbortError") {
        failTurn(view, "Stopped.");
        announce("Stopped.");
      } else {
        const problem = error.problem || networkProblem(error);
        showError(problem);
        failTurn(view, `No answer: ${problem.detail}`);
        if (error.problem && error.problem.status >= 400) giveBack(message);
      }
    } finally {
      if (state.controller === controller) state.controller = null;
      setBusy(false);
      scrollToEnd();
    }
  }

  // -- the composer ----------------------------------------------------------------------

  function setBusy(busy) {
    state.busy = busy;
    ui.send.disabled = busy || overLimit();
    ui.send.textContent = busy ? "Working…" : "Send";
    ui.stop.hidden = !busy;
    ui.composer.setAttribute("aria-busy", String(busy));
  }

  // Characters as the server counts them (code points: an emoji is one, not two).
  function messageLength() {
    return [...ui.message.value.trim()].length;
  }

  function overLimit() {
    return messageLength() > MAX_MESSAGE_CHARS;
  }

  // The server decides too (it answers 400 above the limit); Send waits for a message
  // short enough, and the counter says how far over it is.
  function updateCounter() {
    const length = messageLength();
    const near = length > MAX_MESSAGE_CHARS * 0.9;
    ui.counter.textContent = near
      ? `${length.toLocaleString()} / ${MAX_MESSAGE_CHARS.toLocaleString()} characters`
      : "";
    ui.counter.classList.toggle("over", length > MAX_MESSAGE_CHARS);
    ui.send.disabled = Boolean(state.busy) || length > MAX_MESSAGE_CHARS;
  }

  function submit() {
    const message = ui.message.value.trim();
    if (!message || state.controller || overLimit()) return;
    ui.message.value = "";
    updateCounter();
    ask(message);
  }

  function bindEvents() {
    ui.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });
    ui.message.addEventListener("keydown", (event) => {
      // Enter sends; Shift+Enter is a new line; never while an IME is composing.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    });
    ui.message.addEventListener("input", updateCounter);
    ui.stop.addEventListener("click", () => state.controller && state.controller.abort());
    ui.newConversation.addEventListener("click", startNewConversation);
    ui.bannerClose.addEventListener("click", clearError);
    ui.keyToggle.addEventListener("click", () => openKeyPanel(ui.keyPanel.hidden));
    ui.keyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      saveKey(ui.keyInput.value);
    });
    ui.forgetKey.addEventListener("click", () => {
      ui.keyInput.value = "";
      state.apiKey = "";
      writeStorage(localStorage, KEY_STORAGE, "");
      ui.mode.hidden = true;
      openKeyPanel(true);
    });
    for (const chip of document.querySelectorAll("[data-example]")) {
      chip.addEventListener("click", () => {
        ui.message.value = chip.textContent;
        submit();
      });
    }
  }

  async function init() {
    bindEvents();
    setBusy(false);
    openKeyPanel(false);
    setConversation(readStorage(sessionStorage, CONVERSATION_STORAGE) || `web-${uuid()}`);
    // Only ask for the history once the credential is known to work: every 401 counts
    // against this address's failed-login budget on the server.
    if (await loadAgents()) await restoreHistory();
    ui.message.focus();
  }

  init();
})();
