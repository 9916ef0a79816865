// Golden outputs of the faceres graph model (HSE FaceRec, MobileNet-v1 trunk,
// 224 px → 1024-d embedding + gender sigmoid + 100-bin age softmax) of
// @vladmandic/human 3.3.6 (TF.js 4.22, pure-JS cpu backend), for the LibTorch
// port in src/models/human.
//
// The model is loaded by the package's own loader (Human#load with
// modelBasePath pointing at a throw-away HTTP server on 127.0.0.1 that serves
// the package's models/ folder, because Node's fetch has no file:// and the
// package's file:// path needs tfjs-node). The input is prepared exactly as the
// package's src/face/faceres.ts `enhance()` does for an un-cropped face
// (config.face.description.crop unset): tf.image.resizeBilinear(image0to1,
// [224, 224], alignCorners=false), then × 255; then model.execute(). `enhance`
// is not exported by the bundle, so its two ops are restated here. Age and
// gender are decoded with faceres.ts `predict()`'s formulas.
//
// Pixel source: as for the face-api golden (scripts/faceapi/reference.mjs), the
// C++ side decodes the JPEGs (cv::imread, BGR→RGB) and writes binary PPMs with
// `edi-faceapi-dump-rgb`; this script reads them and records each buffer's
// sha256 so the C++ test can prove it saw the same pixels. The [0,1] image is
// int32 RGB / 255 in float32, as the C++ side computes it.
//
// Usage (from the repo root, after scripts/fetch_assets.sh):
//   cmake --build build --target edi-faceapi-dump-rgb
//   build/src/models/faceapi/edi-faceapi-dump-rgb .assets/johns /tmp/johns-ppm
//   (cd scripts/human && npm ci)
//   node scripts/human/reference.mjs --ppm-dir /tmp/johns-ppm \
//        [--backend cpu|wasm] [--out tests/golden/faceres_johns.json]
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');

function parseArgs(argv) {
  const args = { backend: 'cpu', out: path.join(repo, 'tests', 'golden', 'faceres_johns.json'), ppmDir: null };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (v === undefined) throw new Error(`missing value for ${k}`);
    if (k === '--backend') args.backend = v;
    else if (k === '--out') args.out = path.resolve(v);
    else if (k === '--ppm-dir') args.ppmDir = path.resolve(v);
    else throw new Error(`unknown option ${k}`);
  }
  if (!args.ppmDir) throw new Error('--ppm-dir <dir written by edi-faceapi-dump-rgb> is required');
  return args;
}

// Binary PPM (P6, maxval 255) → { width, height, rgb: Uint8Array }.
function readPpm(file) {
  const buf = fs.readFileSync(file);
  const tokens = [];
  let pos = 0;
  while (tokens.length < 4) {
    while (/\s/.test(String.fromCharCode(buf[pos]))) pos++;
    const start = pos;
    while (!/\s/.test(String.fromCharCode(buf[pos]))) pos++;
    tokens.push(buf.toString('ascii', start, pos));
  }
  pos++;  // the single whitespace after maxval
  const [magic, w, h, maxval] = tokens;
  if (magic !== 'P6' || maxval !== '255') throw new Error(`${file}: not an 8-bit binary PPM`);
  const width = Number(w), height = Number(h);
  if (buf.length - pos < width * height * 3) throw new Error(`${file}: truncated`);
  const rgb = new Uint8Array(buf.buffer, buf.byteOffset + pos, width * height * 3);
  return { width, height, rgb };
}

function listPpms(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ppm')) out.push(p);
    }
  };
  walk(dir);
  // Byte-wise order of the relative path, as C++ std::sort on paths.
  return out.map((p) => path.relative(dir, p).split(path.sep).join('/')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

// Serve `dir` read-only on 127.0.0.1 (ephemeral port) for the package's loader.
function serve(dir) {
  const server = http.createServer((req, res) => {
    const name = path.basename(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'Content-Type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
    res.end(fs.readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const round = (x) => Number(x.toPrecision(8));

// faceres.ts predict(): age from the 100-bin softmax, gender from the sigmoid.
function decodeAge(all) {
  let ageIdx = 0;
  for (let i = 1; i < all.length; i++) if (all[i] > all[ageIdx]) ageIdx = i;
  return Math.round(all[ageIdx - 1] > all[ageIdx + 1] ? 10 * ageIdx - 100 * all[ageIdx - 1]
    : 10 * ageIdx + 100 * all[ageIdx + 1]) / 10;
}

async function loadFaceres(human) {
  await human.load();
  const model = human.models.models.faceres;
  if (!model) throw new Error('Human#load did not load faceres');
  return model;
}

async function runCrop(tf, model, { width, height, rgb }) {
  const outputs = tf.tidy(() => {
    const image = tf.div(tf.tensor4d(Int32Array.from(rgb), [1, height, width, 3], 'int32'), 255);
    const crop = tf.image.resizeBilinear(image, [model.inputs[0].shape[2], model.inputs[0].shape[1]], false);
    return model.execute(tf.mul(crop, 255));
  });
  const pick = (n) => outputs.find((t) => t.shape[1] === n);
  const [desc, gender, age] = [await pick(1024).data(), await pick(1).data(), await pick(100).data()];
  outputs.forEach((t) => t.dispose());
  return { desc, gender: gender[0], age };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const tf = require('@tensorflow/tfjs');
  require('@tensorflow/tfjs-backend-wasm');
  // The package's `main` needs tfjs-node; this bundle uses the tfjs we provide.
  // The package's `exports` map has no './'-prefixed subpaths, so resolve by folder.
  const pkgDir = path.join(here, 'node_modules', '@vladmandic', 'human');
  const { Human } = require(path.join(pkgDir, 'dist', 'human.node-wasm.js'));
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const server = await serve(path.join(pkgDir, 'models'));
  const human = new Human({
    backend: args.backend, debug: false, cacheModels: false,
    modelBasePath: `http://127.0.0.1:${server.address().port}/`,
    face: { enabled: true, detector: { enabled: false }, mesh: { enabled: false }, iris: { enabled: false },
      attention: { enabled: false }, emotion: { enabled: false }, antispoof: { enabled: false },
      liveness: { enabled: false }, description: { enabled: true } },
    body: { enabled: false }, hand: { enabled: false }, object: { enabled: false }, gesture: { enabled: false },
    segmentation: { enabled: false },
  });
  await tf.setBackend(args.backend);
  await tf.ready();
  let model;
  try { model = await loadFaceres(human); } finally { server.close(); }
  if (human.tf !== undefined && human.tf.getBackend() !== args.backend) throw new Error('backend mismatch');

  const crops = [];
  for (const rel of listPpms(args.ppmDir)) {
    const img = readPpm(path.join(args.ppmDir, rel));
    const { desc, gender, age } = await runCrop(tf, model, img);
    crops.push({
      path: rel.replace(/\.ppm$/, ''), width: img.width, height: img.height,
      rgb_sha256: createHash('sha256').update(img.rgb).digest('hex'),
      embedding: Array.from(desc, round),
      gender_sigmoid: round(gender),
      age_softmax: Array.from(age, round),
      age: decodeAge(age),
    });
    process.stderr.write(`${rel}: age ${decodeAge(age)} P(male) ${gender.toFixed(5)}\n`);
  }
  const golden = {
    generator: 'scripts/human/reference.mjs',
    human: `${pkg.name}@${pkg.version}`,
    model: 'models/faceres.json (+ faceres.bin), loaded by Human#load',
    tfjs: tf.version.tfjs,
    backend: tf.getBackend(),
    pixels: 'OpenCV cv::imread (IMREAD_COLOR) + BGR->RGB, via edi-faceapi-dump-rgb; rgb_sha256 = sha256 of the raw row-major RGB bytes',
    input: 'int32 [1,h,w,3] / 255 (float32), resizeBilinear to 224x224 (alignCorners=false), x255, as faceres.ts enhance()',
    outputs: 'embedding = global_pooling/Mean (1024); gender_sigmoid = gender_pred/Sigmoid (> 0.5 male); age_softmax = age_pred/Softmax (100 bins); age = faceres.ts predict() decoding',
    crops,
  };
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(golden) + '\n');
  process.stderr.write(`wrote ${crops.length} crops to ${args.out}\n`);
}

main().catch((e) => {
  process.stderr.write(`reference.mjs: error: ${e.stack || e.message}\n`);
  process.exit(1);
});
