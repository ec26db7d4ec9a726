"""Executes one notebook headless through nbclient, for `study run` (src/notebook/runner.ts).

Usage: nbexec.py IN.ipynb OUT.ipynb RESULT.json --kernel NAME --cwd DIR [--timeout S] [--startup-timeout S]

Writes OUT (also when a cell fails, so the partial outputs can be inspected) and RESULT, a JSON
object {"ok": bool, "failed_cell": int | null, "error": str | null, "skipped": str | null}. The
executed notebook carries no volatile metadata: no timing, and consecutive stream outputs are
merged so that how the kernel happened to chunk its output does not change the file.

A cell may end the run early without an error: an output whose metadata holds
{"study": {"skip": reason}} (what `nb.skip(reason)` sends) leaves the later cells unexecuted and
RESULT says "skipped" (e.g. a study whose input files are not on this machine).
"""
import argparse
import json
import os
import signal
import sys
import tempfile

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError


def merge_streams(outputs):
    merged = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (out.get("output_type") == "stream" and prev is not None
                and prev.get("output_type") == "stream" and prev.get("name") == out.get("name")):
            prev["text"] = prev["text"] + out["text"]
        else:
            merged.append(out)
    return merged


def clean(nb):
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
            for out in cell.outputs:
                out.pop("transient", None)


def write_atomic(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def skip_reason(cell):
    for out in cell.get("outputs", []):
        reason = out.get("metadata", {}).get("study", {}).get("skip")
        if reason:
            return reason
    return None


def process_end(km):
    """The kernel process's exit code or signal (SIGKILL: often the kernel OOM killer), if known."""
    proc = getattr(getattr(km, "provisioner", None), "process", None)
    code = proc.poll() if proc is not None else None
    if code is None:
        return None
    if code < 0:
        try:
            return "signal %d, %s" % (-code, signal.Signals(-code).name)
        except ValueError:
            return "signal %d" % -code
    return "exit code %d" % code


class StudyClient(NotebookClient):
    """Stops executing cells (without an error) after a cell asked to skip the rest."""

    skipped = None
    ended = None  # how the kernel process ended, when it died

    async def _async_check_alive(self):
        try:
            await super()._async_check_alive()
        except DeadKernelError:
            self.ended = self.ended or process_end(self.km)
            raise

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        if self.skipped is not None:
            return cell
        cell = await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        if cell.cell_type == "code":
            self.skipped = skip_reason(cell)
        return cell


def main():
    p = argparse.ArgumentParser()
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("result")
    p.add_argument("--kernel", required=True)
    p.add_argument("--cwd", required=True)
    p.add_argument("--timeout", type=int, default=-1)
    p.add_argument("--startup-timeout", type=int, default=120)
    a = p.parse_args()

    nb = nbformat.read(a.src, as_version=4)
    state = {"cell": None}

    def on_start(cell, cell_index, **_):
        state["cell"] = cell_index

    client = StudyClient(
        nb,
        kernel_name=a.kernel,
        timeout=None if a.timeout < 0 else a.timeout,
        startup_timeout=a.startup_timeout,
        record_timing=False,
        allow_errors=False,
        resources={"metadata": {"path": a.cwd}},
        on_cell_start=on_start,
    )
    result = {"ok": True, "failed_cell": None, "error": None, "skipped": None}
    try:
        client.execute()
        result["skipped"] = client.skipped
    except CellExecutionError as e:
        result = {"ok": False, "failed_cell": state["cell"], "error": str(e)}
    except CellTimeoutError as e:
        result = {"ok": False, "failed_cell": state["cell"], "error": "timeout: " + str(e)}
    except DeadKernelError as e:
        how = " (the kernel process ended: %s)" % client.ended if client.ended else ""
        result = {"ok": False, "failed_cell": state["cell"], "error": "kernel died%s: %s" % (how, e), "kernel_died": "kernel died" + how}
    except Exception as e:  # kernel failed to start, bad kernel name, ...
        result = {"ok": False, "failed_cell": state["cell"], "error": "%s: %s" % (type(e).__name__, e)}
    clean(nb)
    write_atomic(a.out, nbformat.writes(nb) + "\n")
    write_atomic(a.result, json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
