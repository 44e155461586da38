// Drive the npm SPZ peers for tests/test_spz.py.
//
//   node spz_peers.mjs NODE_MODULES pack   JOBS.json   (reference @adobe/spz encoder; JOBS: a list of
//        {input: IN.bin, output: OUT.spz, numPoints, shDegree, version, from: UNSPECIFIED | RDF})
//   node spz_peers.mjs NODE_MODULES unpack IN.spz OUT.bin TO   (reference @adobe/spz, TO: UNSPECIFIED | RDF)
//   node spz_peers.mjs NODE_MODULES spzjs  IN.spz OUT.bin      (spz-js loadSpz)
//
// .bin files are the reference GaussianCloud arrays as little-endian float32, one after another:
// positions (3N), scales (3N, log), rotations (4N, xyzw), alphas (N, logit), colors (3N, SH DC),
// sh (N * K * 3, coefficient-major, colour fastest). unpack/spzjs print {numPoints, shDegree} as JSON on the
// last line of stdout (the reference logs its own lines before it).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, mode, input, output, ...rest] = process.argv.slice(2);
const load = (rel) => import(pathToFileURL(join(modules, rel)).href);
const SH_DIM = [0, 3, 8, 15, 24];

const splitCloud = (buf, n, degree) => {
    const f = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const sizes = [3 * n, 3 * n, 4 * n, n, 3 * n, n * SH_DIM[degree] * 3];
    const names = ['positions', 'scales', 'rotations', 'alphas', 'colors', 'sh'];
    const cloud = { numPoints: n, shDegree: degree, antialiased: false, extensions: [] };
    let at = 0;
    names.forEach((name, i) => { cloud[name] = f.slice(at, at + sizes[i]); at += sizes[i]; });
    if (at !== f.length) throw new Error(`input holds ${f.length} floats, expected ${at}`);
    return cloud;
};

const dumpCloud = (cloud) => {
    const parts = ['positions', 'scales', 'rotations', 'alphas', 'colors', 'sh'].map((k) => Float32Array.from(cloud[k]));
    writeFileSync(output, Buffer.concat(parts.map((p) => Buffer.from(p.buffer))));
    console.log(JSON.stringify({ numPoints: cloud.numPoints, shDegree: cloud.shDegree }));
};

if (mode === 'pack' || mode === 'unpack') {
    const { default: createModule } = await load('@adobe/spz/dist/spz.js');
    const spz = await createModule();
    if (mode === 'pack') {
        // Many jobs per run: instantiating the WASM module costs more than packing a small scene.
        for (const job of JSON.parse(readFileSync(input, 'utf8'))) {
            const cloud = splitCloud(readFileSync(job.input), job.numPoints, job.shDegree);
            const options = { version: job.version, from: spz.CoordinateSystem[job.from], sh1Bits: 5, shRestBits: 4 };
            writeFileSync(job.output, spz.saveSpzToBuffer(cloud, options));
        }
    } else {
        const data = new Uint8Array(readFileSync(input));
        const cloud = spz.loadSpzFromBuffer(data, { to: spz.CoordinateSystem[rest[0]] });
        if (!cloud.numPoints) throw new Error('reference failed to load the file');
        dumpCloud(cloud);
    }
} else if (mode === 'spzjs') {
    const { loadSpz } = await load('spz-js/dist/spz-loader.js'); // not index.js: it pulls in playcanvas
    const cloud = await loadSpz(new Uint8Array(readFileSync(input)));
    if (!cloud) throw new Error('spz-js failed to load the file');
    dumpCloud(cloud);
} else {
    throw new Error(`unknown mode ${mode}`);
}
