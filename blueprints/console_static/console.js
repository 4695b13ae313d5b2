// The StoryWriter operator console: plain modern JavaScript, no build step, no dependency.
// Data comes from /api/console/* (admins only) with the token the operator pasted, kept in
// sessionStorage; the live pool is a server-sent event stream read with fetch (so the token
// travels in a header, never in a URL); the playground uses the public API as a client would.
// Everything from the server is put into the page as text, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "storywriter.console.token";
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(TOKEN_KEY) || "";
  let liveAbort = null;
  let scenario = {};

  // ---------------------------------------------------------------- helpers

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      if (cell instanceof Node) {
        const td = document.createElement("td");
        td.append(cell);
        tr.append(td);
      } else if (cell && typeof cell === "object") {
        const td = el("td", cell.text, cell.className);
        if (cell.title) td.title = cell.title;
        tr.append(td);
      } else {
        tr.append(el("td", cell));
      }
    }
    return tr;
  }

  // Each cell carries its column's name: on a phone the rows stack and show it (CSS).
  function fill(tableId, rows) {
    const table = $(tableId);
    const labels = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    for (const tr of rows) {
      [...tr.children].forEach((td, at) => {
        td.dataset.label = labels[at] || "";
      });
    }
    table.querySelector("tbody").replaceChildren(...rows);
  }

  const number = (value) => (value === null || value === undefined ? "–" : Number(value).toLocaleString("en"));
  const ms = (value) => (value === null || value === undefined ? "–" : `${Math.round(value)} ms`);
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

  function setPill(id, text, tone) {
    const pill = $(id);
    pill.textContent = text;
    pill.className = `pill${tone ? ` ${tone}` : ""}`;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.error || body.message)) || `HTTP ${status}`);
      this.status = status;
      this.code = body && body.code;
    }
  }

  function headers(extra) {
    return { Authorization: `Bearer ${token}`, ...extra };
  }

  async function api(path, options = {}) {
    const init = { method: options.method || "GET", headers: headers(options.headers) };
    if (options.body !== undefined) {
      init.body = JSON.stringify(options.body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      if (response.status === 401) signOut("The token was refused: sign in again.");
      throw new ApiError(response.status, body);
    }
    return body;
  }

  // Server-sent events from a fetch response: calls onEvent(parsed JSON) per data frame.
  async function readEvents(response, onEvent, signal) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of frame.split("\n")) {
            if (!line.startsWith("data: ")) continue;
            const data = line.slice(6);
            onEvent(data === "[DONE]" ? { done: true } : JSON.parse(data));
          }
        }
      }
    } finally {
      if (signal && signal.aborted) reader.cancel().catch(() => {});
    }
  }

  // ---------------------------------------------------------------- sign in

  async function signIn(candidate) {
    token = candidate.trim();
    $("sign-in-error").textContent = "";
    try {
      const me = await api("/api/console/me");
      sessionStorage.setItem(TOKEN_KEY, token);
      $("who").textContent = `${me.user} · worker ${me.worker}`;
      $("sign-in").hidden = true;
      $("app").hidden = false;
      $("sign-out").hidden = false;
      startLive();
      loadModels();
      loadTopUsers();
    } catch (error) {
      const message =
        error.status === 403 ? `Not an admin: ${error.message}` : `Cannot sign in: ${error.message}`;
      signOut(message);
    }
  }

  function signOut(message) {
    if (liveAbort) liveAbort.abort();
    liveAbort = null;
    closeAgent();
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    $("app").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    $("who").textContent = "";
    $("sign-in-error").textContent = message || "";
    setPill("live-state", "signed out");
  }

  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token-input").value);
  });
  $("sign-out").addEventListener("click", () => signOut(""));

  // ---------------------------------------------------------------- tabs

  const tabs = [...document.querySelectorAll('[role="tab"]')];
  function selectTab(tab, focus) {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    if (tab.id === "tab-users") loadTopUsers(); // fresh each time the operator looks
  }
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab, false));
    tab.addEventListener("keydown", (event) => {
      const at = tabs.indexOf(tab);
      const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      selectTab(tabs[(moves[event.key] + tabs.length) % tabs.length], true);
    });
  }

  // ---------------------------------------------------------------- live pool and streams

  async function startLive() {
    if (liveAbort) liveAbort.abort();
    const abort = new AbortController();
    liveAbort = abort;
    let wait = 1000;
    while (!abort.signal.aborted) {
      try {
        const response = await fetch("/api/console/live", { headers: headers(), signal: abort.signal });
        if (response.status === 401 || response.status === 403) {
          const body = await response.json().catch(() => null);
          signOut(`The live view was refused: ${(body && body.error) || response.status}`);
          return;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        setPill("live-state", "live", "ok");
        wait = 1000;
        await readEvents(response, renderSnapshot, abort.signal);
      } catch (error) {
        if (abort.signal.aborted) return;
      }
      setPill("live-state", "reconnecting", "bad");
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 15000);
    }
  }

  function renderSnapshot(snapshot) {
    if (snapshot.error) {
      $("pool-meta").textContent = snapshot.error;
      return;
    }
    setPill("pool-busy", snapshot.busy ? "busy" : "free", snapshot.busy ? "bad" : "ok");
    const span = snapshot.window_s ? `${Math.round(snapshot.window_s / 60)} min` : "n/a (metrics off)";
    $("pool-meta").textContent = `Worker ${snapshot.worker} · TTFT and errors over the last ${span} · updated ${new Date().toLocaleTimeString()}`;
    fill(
      "pool-table",
      snapshot.providers.map((p) => {
        const slots = el("div", null, "slots");
        const bar = el("div", null, "bar");
        const used = el("span");
        used.style.width = `${p.slots_total ? Math.min(100, (100 * p.slots_in_use) / p.slots_total) : 0}%`;
        bar.append(used);
        slots.append(bar, el("span", `${p.slots_in_use} / ${p.slots_total}`));
        const ready = p.readiness
          ? el("span", p.readiness.state, `pill ${p.readiness.state === "up" ? "ok" : "bad"}`)
          : el("span", "–");
        if (p.readiness && p.readiness.detail) ready.title = p.readiness.detail;
        const errors =
          p.error_rate === null ? "–" : `${(100 * p.error_rate).toFixed(1)}% (${p.errors})`;
        const tr = row([
          { text: `${p.name} (${p.kind})` },
          { text: p.models.join(", ") || "–", className: "models" },
          slots,
          { text: p.queue_length, className: "num" },
          el("span", p.busy ? "busy" : "free", `pill ${p.busy ? "bad" : "ok"}`),
          ready,
          { text: ms(p.ttft_p50_ms), className: "num", title: `${p.streams} streams in the window` },
          { text: ms(p.ttft_p95_ms), className: "num" },
          { text: errors, className: "num" },
        ]);
        tr.dataset.provider = p.name;
        return tr;
      }),
    );
    const more = snapshot.streams_total > snapshot.streams.length ? ` (${snapshot.streams.length} shown)` : "";
    setPill("streams-count", `${snapshot.streams_total}${more}`, snapshot.streams_total ? "warn" : "");
    $("streams-empty").hidden = snapshot.streams_total > 0;
    fill(
      "streams-table",
      snapshot.streams.map((s) => {
        const cancel = el("button", "Cancel", "danger");
        cancel.type = "button";
        cancel.setAttribute("aria-label", `Cancel the stream of ${s.user} on ${s.provider}`);
        cancel.addEventListener("click", () => cancelStream(s.id, cancel));
        const tr = row([
          s.user,
          s.byok ? `${s.provider} (BYOK)` : s.provider,
          s.model,
          s.mode === "agent_stream" ? "agent" : "chat",
          { text: `${s.age_s.toFixed(1)} s`, className: "num" },
          { text: s.chunks, className: "num" },
          cancel,
        ]);
        tr.dataset.stream = s.id;
        return tr;
      }),
    );
  }

  async function cancelStream(id, button) {
    button.disabled = true;
    button.textContent = "Cancelling…";
    $("streams-error").textContent = "";
    try {
      await api(`/api/console/streams/${encodeURIComponent(id)}/cancel`, { method: "POST" });
    } catch (error) {
      $("streams-error").textContent = `Could not cancel: ${error.message}`;
      button.disabled = false;
      button.textContent = "Cancel";
    }
  }

  // ---------------------------------------------------------------- users and credits

  async function loadTopUsers() {
    $("top-error").textContent = "";
    const query = new URLSearchParams({ window_s: $("top-window").value, by: $("top-by").value });
    try {
      const top = await api(`/api/console/users?${query}`);
      fill(
        "top-table",
        top.users.map((u) => {
          const link = el("button", u.user, "quiet");
          link.type = "button";
          link.addEventListener("click", () => {
            $("account-user").value = u.user;
            loadAccount(u.user);
          });
          return row([link, { text: number(u.requests), className: "num" }, { text: number(u.tokens), className: "num" }, { text: number(u.credits), className: "num" }]);
        }),
      );
    } catch (error) {
      $("top-error").textContent = error.message;
    }
  }

  async function loadAccount(user) {
    $("account-error").textContent = "";
    try {
      const account = await api(`/api/console/account?${new URLSearchParams({ user })}`);
      $("account").hidden = false;
      $("account").dataset.user = account.user;
      $("account-balance").textContent = number(account.balance);
      $("account-reserved").textContent = number(account.reserved);
      $("account-available").textContent = number(account.available);
      fill("holds-table", account.holds.map((h) => row([h.request_id, { text: number(h.amount), className: "num" }, when(h.created_at)])));
      fill(
        "usage-table",
        account.usage.map((u) =>
          row([when(u.created_at), u.byok ? `${u.provider} (BYOK)` : u.provider, u.model, { text: number(u.prompt_tokens + u.completion_tokens), className: "num" }, { text: number(u.credits), className: "num" }, u.status]),
        ),
      );
      fill("grants-table", account.grants.map((g) => row([when(g.created_at), { text: number(g.amount), className: "num" }, { text: number(g.balance_after), className: "num" }, g.note || ""])));
    } catch (error) {
      $("account-error").textContent = error.message;
    }
  }

  $("top-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadTopUsers();
  });
  $("account-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAccount($("account-user").value.trim());
  });
  $("grant-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const user = $("account").dataset.user;
    const amount = Number.parseInt($("grant-amount").value, 10);
    const note = $("grant-note").value.trim() || null;
    $("grant-result").textContent = "";
    try {
      const result = await api("/api/console/grants", { method: "POST", body: { user, amount, note } });
      $("grant-result").textContent = `${amount > 0 ? "Granted" : "Removed"} ${number(Math.abs(amount))} credits: ${result.user} now has ${number(result.balance)}.`;
      $("grant-amount").value = "";
      $("grant-note").value = "";
      await loadAccount(user);
    } catch (error) {
      $("grant-result").textContent = `Refused: ${error.message}`;
    }
  });

  // ---------------------------------------------------------------- playground: chat

  function byokHeaders() {
    const out = {};
    const key = $("byok-key").value.trim();
    if (!key) return out;
    out["X-BYOK-API-Key"] = key;
    if ($("byok-base-url").value.trim()) out["X-BYOK-Base-URL"] = $("byok-base-url").value.trim();
    if ($("byok-provider").value) out["X-BYOK-Provider"] = $("byok-provider").value;
    return out;
  }

  async function loadModels() {
    $("chat-error").textContent = "";
    const select = $("chat-model");
    try {
      const models = await api("/api/proxy/llm/v1/models", { headers: byokHeaders() });
      const current = select.value;
      select.replaceChildren(
        ...models.data.map((m) => {
          const option = el("option", `${m.id} (${m.owned_by})`);
          option.value = m.id;
          return option;
        }),
      );
      if ([...select.options].some((o) => o.value === current)) select.value = current;
    } catch (error) {
      $("chat-error").textContent = `Models: ${error.message}`;
    }
  }
  $("chat-models-refresh").addEventListener("click", loadModels);

  let chatAbort = null;
  function stat(id, value) {
    $(id).textContent = value;
  }

  $("chat-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (chatAbort) return;
    const output = $("chat-output");
    output.replaceChildren();
    $("chat-error").textContent = "";
    for (const id of ["stat-ttft", "stat-rate", "stat-prompt", "stat-completion", "stat-credits", "stat-usd", "stat-provider", "stat-finish"]) stat(id, "–");
    const messages = [];
    if ($("chat-system").value.trim()) messages.push({ role: "system", content: $("chat-system").value });
    messages.push({ role: "user", content: $("chat-message").value });
    const body = {
      model: $("chat-model").value || undefined,
      messages,
      max_tokens: Number.parseInt($("chat-max-tokens").value, 10) || 256,
      temperature: Number.parseFloat($("chat-temperature").value),
      stream: true,
    };
    chatAbort = new AbortController();
    $("chat-send").disabled = true;
    $("chat-stop").disabled = false;
    const sent = performance.now();
    let first = 0;
    let last = 0;
    let chunks = 0;
    try {
      const response = await fetch($("chat-endpoint").value, {
        method: "POST",
        headers: headers({ "Content-Type": "application/json", ...byokHeaders() }),
        body: JSON.stringify(body),
        signal: chatAbort.signal,
      });
      if (!response.ok) {
        const error = await response.json().catch(() => null);
        throw new ApiError(response.status, error);
      }
      await readEvents(
        response,
        (chunk) => {
          if (chunk.done) return;
          if (chunk.error) {
            $("chat-error").textContent = `${chunk.error.type}: ${chunk.error.message}`;
            return;
          }
          const choice = chunk.choices && chunk.choices[0];
          const text = choice && choice.delta && choice.delta.content;
          if (text) {
            const now = performance.now();
            if (!first) {
              first = now;
              stat("stat-ttft", ms(first - sent));
            }
            last = now;
            chunks += 1;
            output.append(el("span", text));
          }
          if (choice && choice.finish_reason) stat("stat-finish", choice.finish_reason + (chunk.capped_by ? ` (capped by ${chunk.capped_by})` : ""));
          if (chunk.usage) {
            stat("stat-prompt", number(chunk.usage.prompt_tokens));
            stat("stat-completion", number(chunk.usage.completion_tokens));
            const seconds = (last - first) / 1000;
            const tokens = chunk.usage.completion_tokens || chunks;
            // Decode speed: the tokens after the first, over the time since the first.
            stat("stat-rate", seconds > 0 && tokens > 1 ? ((tokens - 1) / seconds).toFixed(1) : "–");
          }
          if (chunk.cost) {
            stat("stat-credits", number(chunk.cost.credits));
            stat("stat-usd", `$${Number(chunk.cost.usd).toFixed(6)}`);
            stat("stat-provider", chunk.cost.provider);
          }
        },
        chatAbort.signal,
      );
    } catch (error) {
      if (!chatAbort.signal.aborted) $("chat-error").textContent = error.message;
    } finally {
      chatAbort = null;
      $("chat-send").disabled = false;
      $("chat-stop").disabled = true;
    }
  });
  $("chat-stop").addEventListener("click", () => {
    if (chatAbort) chatAbort.abort();
  });

  // ---------------------------------------------------------------- playground: agent

  let socket = null;
  let opening = null;

  function parseScenario() {
    $("scenario-error").textContent = "";
    const text = $("scenario-editor").value.trim();
    if (!text) return {};
    try {
      const parsed = JSON.parse(text);
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("the scenario must be a JSON object");
      return parsed;
    } catch (error) {
      $("scenario-error").textContent = `Scenario: ${error.message}`;
      return null;
    }
  }

  function showScenario(value) {
    scenario = value;
    $("scenario-editor").value = JSON.stringify(value, null, 2);
  }

  $("scenario-sample").addEventListener("click", async () => {
    try {
      const response = await fetch("/console/assets/sample-scenario.json");
      showScenario(await response.json());
    } catch (error) {
      $("scenario-error").textContent = error.message;
    }
  });
  $("scenario-format").addEventListener("click", () => {
    const parsed = parseScenario();
    if (parsed) showScenario(parsed);
  });

  function closeAgent() {
    if (socket) socket.close(1000, "signed out");
    socket = null;
    opening = null;
  }

  function openAgent() {
    if (socket && socket.readyState === WebSocket.OPEN) return Promise.resolve(socket);
    if (opening) return opening;
    setPill("agent-state", "connecting", "warn");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/streaming_agent/scenario/ws?token=${encodeURIComponent(token)}`);
    opening = new Promise((resolve, reject) => {
      ws.addEventListener("message", (event) => {
        const frame = JSON.parse(event.data);
        if (frame.type === "session" && frame.status === "ready") {
          socket = ws;
          opening = null;
          setPill("agent-state", "ready", "ok");
          resolve(ws);
          return;
        }
        onAgentFrame(frame);
      });
      ws.addEventListener("close", (event) => {
        if (socket === ws) socket = null;
        opening = null;
        setPill("agent-state", event.code === 1000 ? "closed" : `closed (${event.code})`, event.code === 1000 ? "" : "bad");
        reject(new Error(`the session closed (${event.code} ${event.reason})`));
      });
    });
    return opening;
  }

  function step(text, className) {
    const item = el("li", text, className);
    $("agent-steps").append(item);
  }

  function followUps(questions) {
    $("agent-followups").replaceChildren(
      ...(questions || []).map((question) => {
        const button = el("button", question);
        button.type = "button";
        button.addEventListener("click", () => {
          $("agent-message").value = question;
          sendAgent();
        });
        return button;
      }),
    );
  }

  function onAgentFrame(frame) {
    const meta = frame.metadata || {};
    if (frame.type === "status") {
      if (meta.status === "completed") {
        step("completed", "done");
        setPill("agent-state", "ready", "ok");
      } else if (meta.error || meta.status === "error") {
        step(`error: ${meta.error || frame.content}`, "failed");
        setPill("agent-state", "ready", "ok");
      } else {
        step(meta.node ? `${frame.content} (${meta.node})` : frame.content);
      }
    } else if (frame.type === "chat") {
      const prose = $("agent-prose");
      if (frame.content) {
        if (frame.streaming) prose.append(el("span", frame.content));
        else prose.replaceChildren(el("span", frame.content));
      }
      followUps(meta.follow_up_questions);
    } else if (frame.type === "tool_call" || frame.type === "tool_result") {
      const call = frame.type === "tool_call" ? meta.tool_call || {} : frame;
      const params = call.parameters || call;
      const before = scenario;
      const after = params.updated_scenario
        ? { ...before, ...params.updated_scenario }
        : { ...before, ...(params.scenario || {}) };
      renderDiff(before, after);
      showScenario(after);
      step(`${call.action || "update_scenario"} applied`, "done");
      followUps(null); // a tool_call clears the follow-ups (contract 8.3)
    } else if (frame.type === "error") {
      $("agent-error").textContent = `${frame.code}: ${frame.error}`;
    }
  }

  async function sendAgent() {
    const message = $("agent-message").value.trim();
    if (!message) return;
    const parsed = parseScenario();
    if (!parsed) return;
    scenario = parsed;
    $("agent-error").textContent = "";
    $("agent-steps").replaceChildren();
    $("agent-prose").replaceChildren();
    followUps(null);
    try {
      const ws = await openAgent();
      setPill("agent-state", "running", "warn");
      ws.send(JSON.stringify({ type: "message", message, scenario: parsed }));
      $("agent-message").value = "";
    } catch (error) {
      $("agent-error").textContent = error.message;
    }
  }

  $("agent-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendAgent();
  });
  $("agent-cancel").addEventListener("click", () => {
    if (socket) socket.send(JSON.stringify({ type: "cancel" }));
  });
  $("agent-reset").addEventListener("click", () => {
    if (socket) socket.send(JSON.stringify({ type: "reset" }));
    $("agent-steps").replaceChildren();
    $("agent-prose").replaceChildren();
    $("agent-diff").replaceChildren(el("p", "No change yet.", "meta"));
    followUps(null);
  });

  // A readable diff of two scenarios: changed top-level keys; entity lists matched by id.
  const short = (value) => {
    const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value);
    return text && text.length > 160 ? `${text.slice(0, 157)}…` : text;
  };

  function renderDiff(before, after) {
    const lines = [];
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    for (const key of keys) {
      const old = before[key];
      const now = after[key];
      if (JSON.stringify(old) === JSON.stringify(now)) continue;
      lines.push(["key", key]);
      const byId = (list) => new Map((Array.isArray(list) ? list : []).filter((e) => e && e.id).map((e) => [e.id, e]));
      if (Array.isArray(old) && Array.isArray(now) && [...old, ...now].every((e) => e && typeof e === "object" && e.id)) {
        const was = byId(old);
        const is = byId(now);
        for (const [id, entity] of is) {
          const prior = was.get(id);
          const named = prior || entity; // an edit is shown under the name it had
          const label = named.name || named.title || id;
          if (!prior) {
            lines.push(["add", `+ ${label}: ${short(entity)}`]);
            continue;
          }
          for (const field of new Set([...Object.keys(prior), ...Object.keys(entity)])) {
            if (JSON.stringify(prior[field]) === JSON.stringify(entity[field])) continue;
            if (field in prior) lines.push(["del", `- ${label}.${field}: ${short(prior[field])}`]);
            if (field in entity) lines.push(["add", `+ ${label}.${field}: ${short(entity[field])}`]);
          }
        }
        for (const [id, entity] of was) {
          if (!is.has(id)) lines.push(["del", `- ${entity.name || entity.title || id}`]);
        }
      } else {
        if (old !== undefined) lines.push(["del", `- ${short(old)}`]);
        if (now !== undefined) lines.push(["add", `+ ${short(now)}`]);
      }
    }
    const box = $("agent-diff");
    box.replaceChildren(...(lines.length ? lines.map(([kind, text]) => el("div", text, kind)) : [el("p", "The change left the scenario as it was.", "meta")]));
  }

  // ---------------------------------------------------------------- start

  if (token) signIn(token);
})();
