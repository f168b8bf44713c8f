"""`quiver sync` against dlt's ``rest_api`` on the same pages, in the same run.

The anchor job: PAGES pages of RECORDS records (default 1,000 x 1,000), each record
with a nested object and a list, written once as files and served by nginx; loaded
into DuckDB and PostgreSQL. Each loader runs on the load core as its own process;
its CPU seconds (user + system, from wait4) and peak RSS are what is compared:
records per CPU-second, and the ratio to dlt's.

dlt is installed from PyPI into a virtualenv of its own (DLT_VENV, kept between
runs), never into Quiver's. See bench/README.md for the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import driver
from rig import BenchError, Processes, free_port, nginx_main_conf, say, wait_for_port

PAGES = int(os.environ.get("PAGES", "1000"))
RECORDS = int(os.environ.get("RECORDS", "1000"))
DESTINATIONS = os.environ.get("DESTINATIONS", "duckdb postgres").split()
DLT = os.environ.get("DLT", "1") == "1"
DLT_VENV = Path(os.environ.get("DLT_VENV", Path.home() / ".cache/quiver-bench/dlt-venv"))
POSTGRES = os.environ.get("SYNC_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
QUIVER = os.environ.get("QUIVER", "quiver")
TRANSPORT = os.environ.get("TRANSPORT", "http11")  # the source's transport: http11 or httpx
LOAD_CPU, SERVE_CPU = 0, 1

DLT_SCRIPT = """\
import sys
import dlt
from dlt.sources.rest_api import rest_api_source

base, destination, credentials = sys.argv[1], sys.argv[2], sys.argv[3]
source = rest_api_source({
    "client": {"base_url": base},
    "resources": [{
        "name": "items",
        "endpoint": {
            "path": "items",
            "data_selector": "data",
            "paginator": {"type": "page_number", "page_param": "page", "base_page": 1,
                          "total_path": "total_pages"},
        },
    }],
})
kwargs = {"credentials": credentials} if credentials != "-" else {}
kind = dlt.destinations.duckdb if destination == "duckdb" else dlt.destinations.postgres
pipeline = dlt.pipeline(pipeline_name="bench", destination=kind(**kwargs), dataset_name=sys.argv[4])
pipeline.run(source)
"""


@dataclass
class Result:
    loader: str
    destination: str
    records: int
    cpu_seconds: float
    wall_seconds: float
    peak_rss_mb: float

    @property
    def per_cpu_second(self) -> float:
        return self.records / self.cpu_seconds if self.cpu_seconds else 0.0


def write_pages(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for page in range(1, PAGES + 1):
        records = [
            {
                "id": (page - 1) * RECORDS + n,
                "name": f"item {n}",
                "price": n * 1.25,
                "active": n % 2 == 0,
                "updated_at": f"2024-{1 + page % 12:02d}-{1 + n % 28:02d}T12:00:00Z",
                "owner": {"id": n % 97, "email": f"owner{n % 97}@example.com", "tier": "gold"},
                "tags": [{"name": "a", "weight": n}, {"name": "b", "weight": n + 1}],
            }
            for n in range(RECORDS)
        ]
        body = orjson.dumps({"data": records, "total_pages": PAGES})
        (folder / f"page-{page}.json").write_bytes(body)


def serve(procs: Processes, work: Path, pages: Path) -> str:
    port = free_port()
    conf = nginx_main_conf(
        work,
        "nginx",
        f"""    server {{
        listen 127.0.0.1:{port};
        root {pages};
        default_type application/json;
        location = /items {{ try_files /page-$arg_page.json =404; }}
    }}""",
    )
    log = conf.parent / "error.log"
    argv = ["nginx", "-p", str(conf.parent), "-e", str(log), "-c", str(conf), "-g", "daemon off;"]
    proc = procs.spawn(argv, cpu=SERVE_CPU, out=conf.parent / "stdout.log")
    wait_for_port(port, proc, log, 10)
    return f"http://127.0.0.1:{port}"


def measured(
    procs: Processes, argv: list[str], out: Path, env: dict[str, str]
) -> tuple[float, float, float]:
    """Run ``argv`` on the load core: (CPU seconds, wall seconds, peak RSS in MB)."""
    began = time.monotonic()
    proc = procs.spawn(argv, cpu=LOAD_CPU, out=out, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    procs.stop(proc)
    if proc.returncode:
        raise BenchError(f"{' '.join(argv)} failed ({proc.returncode}):\n{out.read_text()[-3000:]}")
    return usage.ru_utime + usage.ru_stime, time.monotonic() - began, usage.ru_maxrss / 1024


def postgres_schema() -> str:
    import psycopg

    schema = f"sync_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}".encode())
    return schema


def compile_quiver() -> None:
    """Write the bytecode of Quiver's modules, as a first run would where Python may
    write it: with PYTHONDONTWRITEBYTECODE set (or an editable install never run), every
    measured run would compile them again (about 0.1 CPU-s), which no installed
    loader pays. dlt's modules were compiled when pip installed them."""
    interpreter = driver.quiver_python(tuple(shlex.split(QUIVER)))
    find = "import os, quiver; print(os.path.dirname(quiver.__file__))"
    package = subprocess.run(
        [interpreter, "-c", find], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run([interpreter, "-m", "compileall", "-q", package], check=True)


def run_quiver(procs: Processes, work: Path, base: str, destination: str) -> Result:
    if destination == "duckdb":
        url = f"duckdb:///{work / 'quiver.duckdb'}"
    else:
        schema = postgres_schema()
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    config = work / f"quiver-{destination}.yaml"
    config.write_text(
        f"""sources:
  - name: bench
    base_url: {base}
    transport: {TRANSPORT}
    resources:
      - name: items
        path: /items
        data_selector: data
        paginator: {{type: page_number, page_param: page, base_page: 1, total_path: total_pages}}
destination: "{url}"
"""
    )
    env = dict(os.environ, COLUMNS="100")
    cpu, wall, rss = measured(
        procs, [QUIVER, "sync", "-c", str(config)], work / f"quiver-{destination}.log", env
    )
    return Result("quiver", destination, PAGES * RECORDS, cpu, wall, rss)


def dlt_python() -> Path:
    python = DLT_VENV / "bin" / "python"
    if not python.exists():
        say(f"installing dlt into {DLT_VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "dlt[duckdb,postgres]"], check=True)
    return python


def run_dlt(procs: Processes, work: Path, base: str, destination: str) -> Result:
    script = work / "dlt_rest_api.py"
    script.write_text(DLT_SCRIPT)
    credentials = str(work / "dlt.duckdb") if destination == "duckdb" else _with_password(POSTGRES)
    env = dict(os.environ, DLT_DATA_DIR=str(work / "dlt-data"), RUNTIME__LOG_LEVEL="WARNING")
    dataset = f"dlt_bench_{uuid.uuid4().hex[:8]}"
    argv = [str(dlt_python()), str(script), base, destination, credentials, dataset]
    cpu, wall, rss = measured(procs, argv, work / f"dlt-{destination}.log", env)
    return Result("dlt", destination, PAGES * RECORDS, cpu, wall, rss)


def _with_password(url: str) -> str:
    """dlt insists on a password, which trust authentication ignores."""
    parts = urlsplit(url)
    if parts.password is not None or parts.username is None:
        return url
    return urlunsplit(
        parts._replace(
            netloc=f"{parts.username}:unused@{parts.hostname}"
            + (f":{parts.port}" if parts.port else "")
        )
    )


def report(results: list[Result], folder: Path) -> None:
    say(
        f"{'loader':8} {'destination':11} {'records':>10} {'CPU s':>8} {'wall s':>8} "
        f"{'rec/CPU-s':>11} {'peak RSS MB':>12} {'x dlt':>7}"
    )
    dlt = {r.destination: r for r in results if r.loader == "dlt"}
    for r in results:
        anchor = dlt.get(r.destination)
        ratio = (
            f"{r.per_cpu_second / anchor.per_cpu_second:.1f}" if anchor and r is not anchor else "-"
        )
        say(
            f"{r.loader:8} {r.destination:11} {r.records:>10,} {r.cpu_seconds:>8.2f} "
            f"{r.wall_seconds:>8.2f} {r.per_cpu_second:>11,.0f} {r.peak_rss_mb:>12.0f} {ratio:>7}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sync-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps([{**asdict(r), "per_cpu_second": r.per_cpu_second} for r in results], indent=2)
    )
    say(f"results in {path}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args()
    procs = Processes(args.workdir / "pids")
    try:
        say(f"writing {PAGES} pages of {RECORDS} records")
        write_pages(args.workdir / "pages")
        base = serve(procs, args.workdir, args.workdir / "pages")
        compile_quiver()
        results = []
        for destination in DESTINATIONS:
            results.append(run_quiver(procs, args.workdir, base, destination))
            if DLT:
                results.append(run_dlt(procs, args.workdir, base, destination))
        report(results, args.results)
    except BenchError as exc:
        print(f"sync bench: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
