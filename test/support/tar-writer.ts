// Writes small tar(.gz) archives for tests, including hostile ones (escaping paths, links).
import * as zlib from "node:zlib";

export interface TarSpec {
  name: string;
  data?: Uint8Array | string;
  /** '0' file (default), '5' directory, '2' symlink, '1' hardlink. */
  type?: "0" | "5" | "2" | "1";
  linkname?: string;
}

function header(name: string, size: number, type: string, linkname = ""): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, "utf8");
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(size.toString(8).padStart(11, "0") + "\0", 124);
  h.write("00000000000\0", 136);
  h.write("        ", 148);
  h.write(type, 156);
  h.write(linkname, 157);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return h;
}

export function tarBytes(entries: TarSpec[], opts: { gzip?: boolean; end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    if (e.name.length > 100) {
      // GNU long name entry
      const ln = Buffer.from(e.name + "\0");
      parts.push(header("././@LongLink", ln.length, "L"), ln, Buffer.alloc((512 - (ln.length % 512)) % 512));
    }
    parts.push(header(e.name, data.length, e.type ?? "0", e.linkname), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  const tar = Buffer.concat(parts);
  return opts.gzip === false ? tar : zlib.gzipSync(tar);
}
