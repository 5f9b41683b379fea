// The product page reports that it was opened (a click from a recommendation, else a view)
// with a beacon: a POST carrying the CSRF token, sent once the page is really shown, so a
// prefetch of the page records nothing.
(() => {
  "use strict";
  const product = document.getElementById("product");
  if (!product || !product.dataset.seenUrl) return;
  const body = new FormData();
  body.append("csrf_token", product.dataset.csrf);
  body.append("kind", product.dataset.kind);
  navigator.sendBeacon(product.dataset.seenUrl, body);
})();
