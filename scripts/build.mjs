#!/usr/bin/env node
// Builds the project: generates protobuf code from proto/*.proto (when stale), compiles TypeScript to
// dist/, and places the generated JavaScript beside the compiled code. Generated code is never edited.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const genDir = path.join(root, 'src', 'gen');
const genJs = path.join(genDir, 'proto.js');
const genDts = path.join(genDir, 'proto.d.ts');
const protos = fs
  .readdirSync(path.join(root, 'proto'))
  .filter((f) => f.endsWith('.proto'))
  .sort()
  .map((f) => path.join('proto', f));

function mtimeMs(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function generate() {
  const inputs = [...protos, 'scripts/pbjs-wrapper.js', 'scripts/build.mjs'].map((f) => path.join(root, f));
  const newest = Math.max(...inputs.map(mtimeMs));
  if (mtimeMs(genJs) > newest && mtimeMs(genDts) > newest) return;
  fs.mkdirSync(genDir, { recursive: true });
  // Numbers, not Long: txids and indexes are safe integers, validated at every boundary.
  execFileSync(
    bin('pbjs'),
    [
      '-t',
      'static-module',
      '-w',
      './scripts/pbjs-wrapper.js',
      '--es6',
      '--force-number',
      '--no-verify',
      '--no-convert',
      '--no-delimited',
      '--no-service',
      '--no-typeurl',
      '-o',
      genJs,
      ...protos,
    ],
    { cwd: root, stdio: 'inherit' },
  );
  execFileSync(bin('pbts'), ['--no-comments', '-o', genDts, genJs], { cwd: root, stdio: 'inherit' });
  // With --force-number no Long appears; the CommonJS-style import would not type-check under NodeNext.
  const dts = fs.readFileSync(genDts, 'utf8').replace(/^import Long = require\("long"\);\n/m, '');
  fs.writeFileSync(genDts, dts);
  console.log(`build: generated ${path.relative(root, genJs)} from ${protos.join(', ')}`);
}

// fs-ext is a native addon: npm 11 skips dependency install scripts unless package.json allows them
// (allowScripts). Fail loudly here rather than at the first JournalNode start.
function checkNative() {
  try {
    execFileSync(process.execPath, ['-e', 'require("fs-ext")'], { cwd: root, stdio: 'pipe' });
  } catch {
    console.log('build: fs-ext is not built; running npm rebuild fs-ext');
    execFileSync('npm', ['rebuild', 'fs-ext'], { cwd: root, stdio: 'inherit' });
    execFileSync(process.execPath, ['-e', 'require("fs-ext")'], { cwd: root, stdio: 'inherit' });
  }
}

try {
  checkNative();
  generate();
  execFileSync(bin('tsc'), ['-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
} catch (err) {
  console.error(`build failed: ${err.message.split('\n')[0]}`);
  process.exit(1);
}
const outGen = path.join(root, 'dist', 'src', 'gen');
fs.mkdirSync(outGen, { recursive: true });
fs.copyFileSync(genJs, path.join(outGen, 'proto.js'));
// The declarations too: shipped .d.ts files import them, and a consumer's `tsc --strict` reads them.
fs.copyFileSync(genDts, path.join(outGen, 'proto.d.ts'));
