// docs/security.md maps OWASP ASVS requirements to code and tests: every path it cites must exist,
// and every chapter the issue names must be there.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';

const root = path.resolve(import.meta.dirname, '..');
const text = readFileSync(path.join(root, 'docs/security.md'), 'utf8');
const TOP = /^(shared|services|edge|test|deploy|scripts|bench|proto|docs|\.github)\/|^(Dockerfile|README\.md|\.dockerignore|package\.json)$/;
const cited = [...new Set([...text.matchAll(/`([^`\s]+)`/g)].map((match) => match[1]!).filter((token) => TOP.test(token)))];

describe('docs/security.md', () => {
  it('cites files and tests', () => {
    expect(cited.length).toBeGreaterThan(50);
    expect(cited.filter((file) => /\.test\.ts$/.test(file)).length).toBeGreaterThan(20);
  });

  it.each(cited)('%s exists', (file) => {
    expect(existsSync(path.join(root, file))).toBe(true);
  });

  it.each(['V2 Authentication', 'V3 Session management', 'V4 Access control', 'V5 Validation', 'V7 Error handling and logging', 'V8 Data protection', 'V14 Configuration'])(
    'has the chapter %s',
    (chapter) => {
      expect(text).toContain(`## ${chapter}`);
    },
  );

  it('gives every requirement row a status', () => {
    const rows = text.split('\n').filter((line) => /^\| \d+\.\d+(\.\d+|\.x) \|/.test(line));
    expect(rows.length).toBeGreaterThan(100);
    for (const row of rows) expect(row.split('|')[3]).toMatch(/met|partly|n\/a/);
  });
});
