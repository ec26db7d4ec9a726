// A real redis-server (Debian's) for the queue tests: on 127.0.0.1 and a free port, in a temp
// folder, with persistence on (append-only file, no RDB snapshots), so that a restart keeps the
// queue. Tests skip with SKIP_REDIS's reason when redis-server is not installed.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { tempDir } from "./fixtures";

function findRedisServer(): string | undefined {
  for (const c of ["/usr/bin/redis-server", "redis-server"]) {
    try {
      execFileSync(c, ["--version"], { stdio: "ignore" });
      return c;
    } catch { /* next */ }
  }
  return undefined;
}

export const REDIS_SERVER = findRedisServer();
export const SKIP_REDIS: string | false = REDIS_SERVER ? false : "redis-server is not installed (apt-get install -y --no-install-recommends redis-server, or bash environment/setup.sh)";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Sends PING (after AUTH when there is a password); true on PONG. */
function ping(port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let reply = "";
    const done = (ok: boolean) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.on("error", () => done(false));
    sock.on("data", (d) => {
      reply += d.toString();
      if (reply.includes("+PONG")) done(true);
      else if (reply.includes("-")) done(false);
    });
    sock.on("connect", () => sock.write(`${password ? `AUTH ${password}\r\n` : ""}PING\r\n`));
  });
}

export interface RedisServer {
  port: number;
  dir: string;
  /** redis://[:password@]127.0.0.1:port */
  url: string;
  /** Clean shutdown (SIGTERM: the append-only file is flushed). */
  stop(): Promise<void>;
  /** Stops it and starts it again on the same port and folder. */
  restart(downMs?: number): Promise<void>;
}

// Never left behind by a failing test (one exit listener for all of them).
const live = new Set<ChildProcess>();
process.on("exit", () => live.forEach((p) => p.kill("SIGKILL")));

export async function startRedis(opts: { password?: string } = {}): Promise<RedisServer> {
  if (!REDIS_SERVER) throw new Error(String(SKIP_REDIS));
  const port = await freePort();
  const dir = tempDir("redis");
  let proc: ChildProcess | undefined;

  const start = async () => {
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--save", "", "--daemonize", "no", "--logfile", path.join(dir, "redis.log")];
    if (opts.password) args.push("--requirepass", opts.password);
    proc = spawn(REDIS_SERVER, args, { stdio: "ignore" });
    const p = proc;
    live.add(p);
    p.on("exit", () => live.delete(p));
    const t0 = Date.now();
    while (!(await ping(port, opts.password))) {
      if (p.exitCode !== null) throw new Error(`redis-server exited (${p.exitCode}): ${fs.readFileSync(path.join(dir, "redis.log"), "utf8").slice(-2000)}`);
      if (Date.now() - t0 > 10_000) throw new Error(`redis-server on port ${port} does not answer PING after 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill("SIGTERM");
    await exited;
  };
  await start();
  return {
    port, dir, url: `redis://${opts.password ? `:${opts.password}@` : ""}127.0.0.1:${port}`,
    stop,
    async restart(downMs = 0) {
      await stop();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
  };
}
