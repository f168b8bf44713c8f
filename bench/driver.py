#!/usr/bin/env python3
"""The steps every benchmark driver's main() takes around its run: settings from the
environment, signals, checks before the run, the environment record, the JSON file
and the closing report.

Standard library only: this runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rig import BODY, CoreMeter, RigSettings, say

# --------------------------------------------------------------------------- settings


def env_float(prog: str, name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        sys.exit(f"{prog} bench: {name}={raw!r} is not a number")


def env_int(prog: str, name: str, default: int) -> int:
    value = env_float(prog, name, default)
    if value != int(value):
        sys.exit(f"{prog} bench: {name}={value} must be a whole number")
    return int(value)


def quiver_command() -> tuple[str, ...]:
    return tuple(shlex.split(os.environ.get("QUIVER", "quiver")))


def quiver_python(quiver: tuple[str, ...]) -> str:
    """The interpreter beside the quiver command (its virtualenv's), else ours."""
    found = shutil.which(quiver[0]) if quiver else None
    if found:
        beside = Path(found).parent / "python"
        if beside.exists():
            return str(beside)
    return sys.executable


def settings_record(s: Any) -> dict[str, Any]:
    """A driver's settings as the JSON records them."""
    return {k: getattr(s, k) for k in s.__dataclass_fields__ if k != "quiver"} | {
        "quiver_command": list(s.quiver),
        "body_bytes": len(BODY),
    }


# --------------------------------------------------------------------------- report


def _version(argv: list[str]) -> str:
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (run.stdout + run.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def environment(quiver: tuple[str, ...] | None, h2load: bool = True) -> dict[str, Any]:
    """Machine and tool versions; Quiver's when ``quiver`` is its command."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    env = {
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": _version(["nginx", "-v"]).replace("nginx version: ", ""),
        "wrk": _version(["wrk", "-v"]).split(" [")[0],
    }
    if h2load:
        env["h2load"] = _version(["h2load", "--version"])
    env["openssl"] = _version(["openssl", "version"])
    if quiver is not None:
        env["quiver"] = _version([*quiver, "--version"])
    return env


def write_results(results: Path, prog: str, started: dt.datetime, result: dict[str, Any]) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{prog}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2, default=list) + "\n")
    return path


def closing_report(
    path: Path,
    cautions: list[str],
    errors: list[str],
    heading: str = "ERRORS during the run; the numbers above are not trustworthy:",
) -> int:
    """Where the JSON went, the cautions and the errors; the exit status (3: errors)."""
    say(f"results: {path}")
    if cautions:
        say("\ncautions:")
        for line in cautions:
            say(f"  - {line}")
    if errors:
        bar = "!" * 72
        say(f"\n{bar}\n{heading}")
        for line in errors:
            say(f"  - {line}")
        say(bar)
        return 3
    return 0


# --------------------------------------------------------------------------- main


def parse_args(doc: str, prog: str) -> argparse.Namespace:
    """The wrapper's arguments; from here on a signal ends the run through SystemExit,
    so that the servers are stopped on the way out."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="scratch directory")
    parser.add_argument("--results", type=Path, required=True, help="where the JSON goes")
    args = parser.parse_args()

    def raise_exit(signum: int, _frame: object) -> None:
        # Leave the run; further signals must not interrupt stopping the servers.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        say(f"\n{prog} bench: stopped by signal {signum}")
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, raise_exit)
    return args


def missing(
    prog: str,
    s: RigSettings,
    uses_quiver: bool = True,
    quiver_hint: str = " or set QUIVER=/path/to/quiver",
    cores_label: str = "",
) -> bool:
    """Say what the run lacks (Quiver's command, one of its cores), if anything."""
    if uses_quiver and not shutil.which(s.quiver[0]):
        say(
            f"{prog} bench: {s.quiver[0]!r} not found; activate the virtualenv where Quiver "
            f"is installed{quiver_hint}"
        )
        return True
    for cpu in (s.load_cpu, s.proxy_cpu):
        if cpu not in os.sched_getaffinity(0):
            say(
                f"{prog} bench: core {cpu} is not available "
                f"({cores_label}{os.sched_getaffinity(0)})"
            )
            return True
    return False


def busy_before_run(s: RigSettings, warning: str = "expect noisy numbers") -> dict[int, float]:
    """How busy the two cores are for a second before anything starts (warned above 5%)."""
    meter = CoreMeter((s.load_cpu, s.proxy_cpu))
    meter.start()
    time.sleep(1.0)
    idle = meter.stop()
    for core, busy in idle.items():
        if busy > 0.05:
            say(f"!! core {core} is {busy:.0%} busy before the run: {warning}")
    return idle


def idle_cautions(idle: dict[int, float], note: str = "") -> list[str]:
    return [
        f"core {c} was {b:.0%} busy before the run started{note}"
        for c, b in idle.items()
        if b > 0.05
    ]
