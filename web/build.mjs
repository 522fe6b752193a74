// Builds the chat page into $CONFAB_WEB_OUT (default ./dist): one JS bundle and one stylesheet
// with content hashes in their names (served as immutable), and index.html naming them.
import { build } from 'esbuild';
import { mkdirSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { join, basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.env.CONFAB_WEB_OUT || join(here, 'dist');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: [join(here, 'src', 'main.js'), join(here, 'src', 'style.css')],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'esm',
  target: ['es2020'],
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('%CSS%', `/assets/${css}`)
  .replace('%JS%', `/assets/${js}`);
writeFileSync(join(out, 'index.html'), html);
writeFileSync(join(out, 'favicon.svg'), readFileSync(join(here, 'src', 'favicon.svg')));
// The API reference page (/api/docs) runs Scalar's standalone bundle, served from here so that
// the page fetches nothing from elsewhere.
mkdirSync(join(out, 'api-docs'), { recursive: true });
writeFileSync(
  join(out, 'api-docs', 'scalar.js'),
  readFileSync(join(here, 'node_modules', '@scalar', 'api-reference', 'dist', 'browser', 'standalone.js')),
);
console.log(`built ${out}: index.html, assets/${js}, assets/${css}`);
