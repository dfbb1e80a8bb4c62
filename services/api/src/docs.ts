import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

type Operation = {
  operationId?: string;
  summary?: string;
  description?: string;
  parameters?: { name: string; in: string; required?: boolean; description?: string }[];
  requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, { description?: string; type?: string; format?: string }> } }> };
  responses?: Record<string, unknown>;
  security?: unknown[];
};
type OpenApiDocument = { info: { title: string; description?: string }; paths: Record<string, Record<string, Operation>> };

/** The OpenAPI document generated from the proto by protoc-gen-bank-rest (proto/gen/openapi.json). */
export function loadOpenApiDocument(): OpenApiDocument {
  const path = createRequire(import.meta.url).resolve('@bank/proto/openapi.json');
  return JSON.parse(readFileSync(path, 'utf8')) as OpenApiDocument;
}

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/**
 * A self-contained HTML page rendering the OpenAPI document server-side: every operation with
 * its parameters, body fields and answers. No script and no CDN, so it works offline and under
 * a strict Content-Security-Policy.
 */
export function renderDocsPage(doc: OpenApiDocument): string {
  const sections: string[] = [];
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [verb, op] of Object.entries(operations)) {
      const params = (op.parameters ?? [])
        .map((p) => `<li><code>${escape(p.name)}</code> <small>(${escape(p.in)}${p.required ? ', required' : ''})</small> ${escape(p.description ?? '')}</li>`)
        .join('');
      const bodySchema = op.requestBody?.content?.['application/json']?.schema;
      const fields = Object.entries(bodySchema?.properties ?? {})
        .map(([name, s]) => `<li><code>${escape(name)}</code> <small>${escape(s.format ?? s.type ?? '')}</small> ${escape(s.description ?? '')}</li>`)
        .join('');
      const statuses = Object.keys(op.responses ?? {}).join(', ');
      sections.push(`<section class="op" id="${escape(op.operationId ?? '')}">
<h3><span class="verb ${escape(verb)}">${escape(verb.toUpperCase())}</span> <code>${escape(path)}</code></h3>
<p>${escape(op.description ?? op.summary ?? '')}</p>
<p><small>${escape(op.operationId ?? '')} · ${op.security && op.security.length === 0 ? 'no token needed' : 'needs <code>authorization: Bearer</code>'} · answers ${escape(statuses)}</small></p>
${params ? `<h4>Parameters</h4><ul>${params}</ul>` : ''}
${fields ? `<h4>JSON body</h4><ul>${fields}</ul>` : ''}
</section>`);
    }
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(doc.info.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
.op{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.verb{display:inline-block;min-width:4.5rem;text-align:center;border-radius:4px;color:#fff;padding:0 .3rem;font-size:.9em}
.get{background:#2a7ab0}.post{background:#2f9e44}.patch{background:#b08000}.delete{background:#c92a2a}.put{background:#7048e8}
code{background:#f4f4f4;padding:0 .2rem}
</style></head><body>
<h1>${escape(doc.info.title)}</h1>
<p>${escape(doc.info.description ?? '')} The machine-readable document is at <a href="/openapi.json">/openapi.json</a>.
Errors are <code>application/problem+json</code> with a stable <code>code</code>; money-moving calls need an <code>Idempotency-Key</code> header.</p>
${sections.join('\n')}
</body></html>`;
}
