// Live updates on the result page: listen to /stream and redraw the top 5 when a new list
// arrives. Only textContent is used for data, never innerHTML, so product text stays text.
(() => {
  "use strict";
  const live = document.getElementById("live");
  if (!live) return;
  const badge = live.querySelector("[data-status]");
  const log = live.querySelector("[data-log]");
  const list = document.getElementById("recommendations");

  const setStatus = (text, state) => {
    badge.textContent = text;
    badge.dataset.state = state;
  };

  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const card = (item) => {
    const li = el("li", "card");
    li.dataset.asin = item.asin;
    const link = el("a", "product-link");
    link.href = live.dataset.productUrl.replace("ASIN", encodeURIComponent(item.asin));
    if (item.image && /^https?:\/\//i.test(item.image)) {
      const img = el("img");
      img.src = item.image;
      img.alt = "";
      img.referrerPolicy = "no-referrer";
      link.append(img);
    } else {
      link.append(el("div", "noimg"));
    }
    link.append(el("h3", "title", item.title || item.asin));
    li.append(link);
    const meta = el("p", "meta");
    const price = item.price === null ? "price unknown" : "$" + item.price.toFixed(2);
    meta.append(el("span", "price", price), " · score ", el("span", "score", item.score.toFixed(2)));
    li.append(meta);
    if (item.because) li.append(el("p", "because", item.because));
    return li;
  };

  const show = (event) => {
    list.replaceChildren(...event.items.map(card));
    const field = (name) => document.querySelector(`#list-meta [data-field="${name}"]`);
    field("model_version").textContent = event.model_version;
    field("updated_at").textContent = new Date(event.ts).toISOString().slice(0, 16).replace("T", " ") + " UTC";
    field("source").textContent = event.source;
    const hint = document.getElementById("popular-hint");
    if (hint) hint.remove();
    const when = new Date(event.served_at || event.ts).toLocaleTimeString();
    log.prepend(el("li", null, `${when}: new ${event.source} list, model ${event.model_version}`));
  };

  let source = null;
  const connect = () => {
    source = new EventSource(live.dataset.streamUrl);
    source.addEventListener("status", (e) => {
      const status = JSON.parse(e.data);
      if (status.state === "live") setStatus("live", "up");
      else setStatus("reconnecting…", "down");
    });
    source.addEventListener("recommendations", (e) => show(JSON.parse(e.data)));
    source.onerror = () => {
      setStatus("reconnecting…", "down");
      // EventSource gives up on a refusal (e.g. a 429: too many streams open); try again later.
      if (source.readyState === EventSource.CLOSED) retry = setTimeout(connect, RETRY_AFTER_MS);
    };
  };
  const RETRY_AFTER_MS = 15000;
  let retry = null;
  // Leaving the page (or its going into the back/forward cache) must free the server's
  // stream at once; coming back from that cache opens a new one.
  window.addEventListener("pagehide", () => {
    clearTimeout(retry);
    source.close();
  });
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) connect();
  });
  connect();
})();
