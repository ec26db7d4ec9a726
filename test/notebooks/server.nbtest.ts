// `npm run notebook`: Jupyter serves on 127.0.0.1 only, with token authentication.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import { REPO_ROOT } from "../../src/ground/root";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Local addresses listening on `port`, from /proc/net/tcp{,6} (hex "0100007F" = 127.0.0.1). */
function listeners(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const out: string[] = [];
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!fs.existsSync(f)) continue;
    for (const line of fs.readFileSync(f, "utf8").split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 3 && cols[3] === "0A" && cols[1].endsWith(`:${hexPort}`)) out.push(cols[1].split(":")[0]);
    }
  }
  return out;
}

/** Pid and command line (its NUL-separated arguments joined by spaces) of every running process. */
function commandLines(): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      out.push({ pid: Number(d), cmdline: fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").join(" ") });
    } catch {
      /* gone */
    }
  }
  return out;
}

test("npm run notebook listens on 127.0.0.1 only and refuses requests without the token", { skip: process.platform !== "linux" && "reads /proc/net/tcp" }, async () => {
  const port = await freePort();
  const token = "test-token-" + process.pid;
  const child = spawn("npm", ["run", "--silent", "notebook", "--", `--port=${port}`, "--no-browser"], {
    cwd: REPO_ROOT,
    env: { ...process.env, STUDY_NOTEBOOK_TOKEN: token },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, so that the whole tree can be stopped
  });
  let log = "";
  child.stdout.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr.on("data", (d: Buffer) => (log += d.toString()));
  try {
    const deadline = Date.now() + 60_000;
    while (listeners(port).length === 0) {
      assert.ok(Date.now() < deadline, `the server did not start:\n${log}`);
      assert.equal(child.exitCode, null, `the server exited:\n${log}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(listeners(port), ["0100007F"], "bound to 127.0.0.1 only");
    assert.match(log, new RegExp(`http://127\\.0\\.0\\.1:${port}/\\?token=${token}`));
    const url = `http://127.0.0.1:${port}/api/kernelspecs`;
    const anonymous = await fetch(url);
    assert.equal(anonymous.status, 403, "no token: refused");
    const wrong = await fetch(`${url}?token=wrong`);
    assert.equal(wrong.status, 403, "wrong token: refused");
    const ok = await fetch(url, { headers: { Authorization: `token ${token}` } });
    assert.equal(ok.status, 200);
    // Live figures shown after a page reload fetch plotly from the server (src/plotting/figure.ts).
    const plotly = await fetch(`http://127.0.0.1:${port}/files/node_modules/plotly.js-dist-min/plotly.min.js`, { headers: { Authorization: `token ${token}` } });
    assert.equal(plotly.status, 200, "the notebook server serves the plotly bundle under files/");
    assert.ok((await plotly.text()).includes("plotly.js v4."), "it is plotly");
    const specs = (await ok.json()) as { kernelspecs: Record<string, { resource_dir?: string; spec: { argv: string[] } }> };
    assert.ok("tslab-study" in specs.kernelspecs, "the project kernel is offered");
    // The token is on no command line (`ps` shows those to every user): not the server's, not any other.
    const all = commandLines();
    const server = all.find((p) => /-m notebook /.test(p.cmdline) && p.cmdline.includes(`--port=${port}`));
    assert.ok(server, "the server's process is found by its command line");
    assert.deepEqual(all.filter((p) => p.cmdline.includes(token)), [], "no command line holds the token");
    // It came in a config file, which removed itself once read, and is not in the server's environment.
    const config = /--config=(\S+)/.exec(server.cmdline)?.[1] ?? "";
    assert.ok(config.endsWith(`notebook-config-${port}.py`), server.cmdline);
    assert.equal(fs.existsSync(config), false, "the config file is gone once the server has read it");
    assert.ok(!fs.readFileSync(`/proc/${server.pid}/environ`, "utf8").includes(token), "the token is not in the server's environment");
  } finally {
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      /* already gone */
    }
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once("exit", r));
  }
});
