// Start-up of the API explorer at /docs (a served file: the page's Content-Security-Policy allows
// no inline script). Swagger UI over this origin's /openapi.json; "try it" calls this origin (the
// document's server is "/"), with the bearer token given under "Authorize" (kept in this page's
// memory only) and the Idempotency-Key header of money-moving operations as a parameter to fill
// in: a new key moves money once, the same key again replays the first answer.
/* global window, SwaggerUIBundle */

window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  // No call to the public validator service: the page talks to this origin only.
  validatorUrl: null,
  tryItOutEnabled: true,
  persistAuthorization: false,
  displayRequestDuration: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
