// Golden outputs of face-api 1.7.15 (TF.js 4.22, pure-JS cpu backend by default)
// for the LibTorch port in src/models/faceapi.
//
// Pixel source: the C++ tests decode the johns JPEGs with OpenCV (cv::imread,
// libjpeg-turbo), which differs from any JS decoder in ~60 % of pixel values.
// So the exact pixels come from the C++ side: `edi-faceapi-dump-rgb` (built from
// src/models/faceapi/dump_rgb_main.cpp) writes them as binary PPM, this script
// feeds them to face-api as int32 tensors and records the sha256 of each raw
// RGB buffer so the C++ test can prove it saw the same input.
//
// Usage (from the repo root, after scripts/fetch_assets.sh):
//   cmake --build build --target edi-faceapi-dump-rgb
//   build/src/models/faceapi/edi-faceapi-dump-rgb .assets/johns /tmp/johns-ppm
//   (cd scripts/faceapi && npm ci)
//   node scripts/faceapi/reference.mjs --ppm-dir /tmp/johns-ppm \
//        [--backend cpu|wasm] [--out tests/golden/faceapi_johns.json]
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');

function parseArgs(argv) {
  const args = { backend: 'cpu', out: path.join(repo, 'tests', 'golden', 'faceapi_johns.json'), ppmDir: null };
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
    let start = pos;
    while (!/\s/.test(String.fromCharCode(buf[pos]))) pos++;
    tokens.push(buf.toString('ascii', start, pos));
  }
  pos++;  // the single whitespace after maxval
  const [magic, w, h, maxval] = tokens;
  if (magic !== 'P6' || maxval !== '255') throw new Error(`${file}: not an 8-bit binary PPM`);
  const width = Number(w), height = Number(h);
  const rgb = new Uint8Array(buf.buffer, buf.byteOffset + pos, width * height * 3);
  if (rgb.length !== width * height * 3) throw new Error(`${file}: truncated`);
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

const round = (x) => Number(x.toPrecision(8));

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const tf = require('@tensorflow/tfjs');
  require('@tensorflow/tfjs-backend-wasm');
  // The package's `main` needs tfjs-node; this bundle uses the tfjs we provide.
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
  await tf.setBackend(args.backend);
  await tf.ready();
  const modelDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  await faceapi.nets.ageGenderNet.loadFromDisk(modelDir);
  const pkg = JSON.parse(fs.readFileSync(path.join(modelDir, '..', 'package.json'), 'utf8'));

  const crops = [];
  for (const rel of listPpms(args.ppmDir)) {
    const { width, height, rgb } = readPpm(path.join(args.ppmDir, rel));
    const t = tf.tensor3d(Int32Array.from(rgb), [height, width, 3], 'int32');
    const descriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(t);
    const ag = await faceapi.nets.ageGenderNet.predictAgeAndGender(t);
    t.dispose();
    const pMale = ag.gender === 'male' ? ag.genderProbability : 1 - ag.genderProbability;
    crops.push({
      path: rel.replace(/\.ppm$/, ''),
      width,
      height,
      rgb_sha256: createHash('sha256').update(rgb).digest('hex'),
      descriptor: Array.from(descriptor, round),
      age: round(ag.age),
      p_male: round(pMale),
    });
    process.stderr.write(`${rel}: age ${ag.age.toFixed(3)} P(male) ${pMale.toFixed(5)}\n`);
  }
  const golden = {
    generator: 'scripts/faceapi/reference.mjs',
    face_api: `${pkg.name}@${pkg.version}`,
    tfjs: tf.version.tfjs,
    backend: tf.getBackend(),
    pixels: 'OpenCV cv::imread (IMREAD_COLOR) + BGR->RGB, via edi-faceapi-dump-rgb; rgb_sha256 = sha256 of the raw row-major RGB bytes',
    input: 'whole crop as int32 tensor3d [h,w,3]; face-api pads to square and resizes itself',
    p_male: 'softmax index 0 of the gender head',
    crops,
  };
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(golden) + '\n');
  process.stderr.write(`wrote ${crops.length} crops to ${args.out}\n`);
}

main().catch((e) => {
  process.stderr.write(`reference.mjs: error: ${e.message}\n`);
  process.exit(1);
});
