// `study backend`: which TensorFlow.js backend this machine gets, and why.
import type { Command } from "../command";
import { initBackend } from "../../runtime/backend";

export const command: Command = {
  summary: "print the backend the chooser picks here and why (STUDY_BACKEND overrides)",
  usage: "usage: study backend [--json]",
  async run(argv) {
    const report = await initBackend();
    if (argv.includes("--json")) console.log(JSON.stringify(report, null, 2));
    else {
      for (const a of report.attempts) console.log(`${a.ok ? "ok  " : "no  "} ${a.name.padEnd(14)} ${a.detail}`);
      console.log(`backend: ${report.choice} (${report.reason})`);
    }
    return 0;
  },
};
