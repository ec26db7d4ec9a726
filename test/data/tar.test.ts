import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { extractTar, readTar } from "../../src/data/tar";
import { tarBytes } from "../support/tar-writer";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tar-test-"));
const write = (name: string, b: Buffer) => { const f = path.join(tmp, name); fs.writeFileSync(f, b); return f; };

test("streams entries of .tar and .tar.gz, with long names", async () => {
  const long = "d/" + "x".repeat(120) + ".bin";
  const entries = [{ name: "root/", type: "5" as const }, { name: "root/a.txt", data: "hello" }, { name: long, data: new Uint8Array(1000).fill(7) }];
  for (const gzip of [true, false]) {
    const f = write(`ok${gzip ? ".tar.gz" : ".tar"}`, tarBytes(entries, { gzip }));
    const seen: [string, string, number][] = [];
    for await (const { entry, data } of readTar(f)) seen.push([entry.path, entry.type, data.length]);
    assert.deepEqual(seen, [["root", "directory", 0], ["root/a.txt", "file", 5], [long, "file", 1000]]);
  }
});

test("extraction writes files under the target only", async () => {
  const f = write("x.tar.gz", tarBytes([{ name: "a/b/c.txt", data: "abc" }, { name: "./top.txt", data: "t" }]));
  const dest = path.join(tmp, "out");
  assert.equal(await extractTar(f, dest), 2);
  assert.equal(fs.readFileSync(path.join(dest, "a/b/c.txt"), "utf8"), "abc");
  assert.equal(fs.readFileSync(path.join(dest, "top.txt"), "utf8"), "t");
});

for (const [label, entry, pattern] of [
  ["'..' escape", { name: "ok/../../evil.txt", data: "x" }, /escapes the target directory/],
  ["absolute path", { name: "/etc/evil.txt", data: "x" }, /absolute path/],
  ["symlink", { name: "link", type: "2" as const, linkname: "/etc/passwd" }, /refusing symlink/],
  ["hardlink", { name: "hard", type: "1" as const, linkname: "../../x" }, /refusing hardlink/],
] as const) {
  test(`refuses a ${label}`, async () => {
    const f = write(`bad-${label.replace(/\W/g, "")}.tar.gz`, tarBytes([entry]));
    const dest = path.join(tmp, `dest-${label.replace(/\W/g, "")}`);
    await assert.rejects(extractTar(f, dest), pattern);
    assert.ok(!fs.existsSync(path.join(tmp, "evil.txt")) && !fs.existsSync("/etc/evil.txt"));
  });
}

test("truncated and corrupt archives are clear errors naming the file", async () => {
  const good = tarBytes([{ name: "a.bin", data: new Uint8Array(5000).fill(1) }], { gzip: false });
  const cut = write("cut.tar", good.subarray(0, 2048));
  await assert.rejects(async () => { for await (const _ of readTar(cut)) void _; }, new RegExp(`${cut}: truncated tar archive`));
  const bad = Buffer.from(good);
  bad[10] ^= 0xff; // header byte changed: checksum no longer matches
  const corrupt = write("corrupt.tar", bad);
  await assert.rejects(async () => { for await (const _ of readTar(corrupt)) void _; }, /corrupt tar header at byte 0/);
  const gz = tarBytes([{ name: "a.bin", data: new Uint8Array(5000).fill(1) }]);
  const cutGz = write("cut.tar.gz", gz.subarray(0, gz.length - 12));
  await assert.rejects(async () => { for await (const _ of readTar(cutGz)) void _; }, /corrupt or truncated gzip stream|truncated tar/);
});
