// Drives one headless Chromium page for the viewer tests and benchmark.
//
// Protocol: one JSON request per stdin line ({"id", "cmd", ...}), one JSON reply per stdout line
// ({"id", "ok", "result"} or {"id", "ok": false, "error"}). Python keeps the test logic (pixel checks, timing);
// this script only does what needs a browser. Usage: node driver.mjs <chromium> <user-data-dir> <width> <height>
import { createRequire } from "node:module";
import readline from "node:readline";

const require = createRequire(process.env.PLAYWRIGHT_CORE_DIR + "/");
const { chromium } = require("playwright-core");

const [executablePath, userDataDir, width, height] = process.argv.slice(2);
// Flags known to work with Debian's chromium on machines without a GPU or network beyond localhost.
const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: FLAGS,
  viewport: { width: Number(width), height: Number(height) },
  acceptDownloads: true,
});
const page = context.pages()[0] ?? (await context.newPage());

// Bytes the server sent over websockets (viser's whole protocol runs over one).
let wsBytesReceived = 0;
page.on("websocket", (ws) => {
  ws.on("framereceived", (frame) => {
    wsBytesReceived += typeof frame.payload === "string" ? Buffer.byteLength(frame.payload) : frame.payload.length;
  });
});
const consoleLines = [];
page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));

const commands = {
  async goto({ url }) {
    await page.goto(url, { waitUntil: "domcontentloaded" });
    return {};
  },
  async screenshot({ path, clip, timeout = 120000 }) {
    await page.screenshot({ path, clip, timeout });
    return {};
  },
  async click({ role, name, text, exact = true }) {
    const target = role ? page.getByRole(role, { name, exact }) : page.getByText(text, { exact });
    await target.first().click({ timeout: 30000 });
    return {};
  },
  async wait_for_text({ text, timeout = 30000 }) {
    await page.getByText(text).first().waitFor({ timeout });
    return {};
  },
  async upload({ label, path }) {
    // viser's upload button opens a hidden <input type=file>; answer the chooser it triggers.
    const [chooser] = await Promise.all([
      page.waitForEvent("filechooser", { timeout: 30000 }),
      page.getByRole("button", { name: label, exact: true }).first().click(),
    ]);
    await chooser.setFiles(path);
    return {};
  },
  async page_text() {
    return { text: await page.evaluate(() => document.body.innerText) };
  },
  async stats() {
    return { ws_bytes_received: wsBytesReceived, console: consoleLines.slice(-50) };
  },
};

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  if (req.cmd === "close") break;
  let reply;
  try {
    reply = { id: req.id, ok: true, result: await commands[req.cmd](req) };
  } catch (err) {
    reply = { id: req.id, ok: false, error: String(err && err.stack ? err.stack : err) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}
await context.close();
process.exit(0);
