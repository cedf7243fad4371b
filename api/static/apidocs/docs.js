// Renders /api/openapi.json with the vendored Swagger UI (swagger-ui-dist, see docs/OPENAPI.md).
// Kept out of index.html: the page's Content-Security-Policy allows no inline script.
window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null, // the default badge would call a third-party validator
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
