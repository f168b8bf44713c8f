"""`quiver admin user new|list` on the store, and the user signing in to the console of a
real admin process."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from quiver.accounts.users import user_by_email
from quiver.store import open_store
from tests.support.process import run_quiver
from tests.web.forms import csrf_of
from tests.web.process import admin_with_pages

PASSWORD = "correct horse battery staple"


def test_an_admin_user_is_made_from_stdin_listed_and_signs_in_to_the_console(
    tmp_path: Path,
) -> None:
    store = tmp_path / "quiver.db"
    made = _run_with_stdin(
        f"{PASSWORD}\n",
        "admin",
        "user",
        "new",
        "Root@Example.com",
        "--name",
        "Grace Hopper",
        "--password-stdin",
        "--store",
        str(store),
    )
    assert made.returncode == 0, made.stderr
    assert "root@example.com" in made.stdout and "platform admin" in made.stdout
    assert PASSWORD not in made.stdout + made.stderr

    opened = open_store(str(store))
    try:
        found = user_by_email(opened, "root@example.com")
        assert found is not None and found[0].is_admin and found[0].display_name == "Grace Hopper"
        assert found[1].startswith("scrypt$32768$8$1$")
    finally:
        opened.close()

    listed = run_quiver("admin", "user", "list", "--store", str(store))
    assert listed.returncode == 0, listed.stderr
    assert re.search(
        r"^root@example\.com\s+Grace Hopper\s+yes\s+active\s+-\s+\d{4}-", listed.stdout, re.M
    )
    assert "scrypt" not in listed.stdout

    again = _run_with_stdin(
        f"{PASSWORD}\n",
        "admin",
        "user",
        "new",
        "root@example.com",
        "--password-stdin",
        "--store",
        str(store),
    )
    assert again.returncode == 1 and "exists already" in again.stderr

    with admin_with_pages(store) as port:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Origin": base}, timeout=30) as client:
            page = client.get("/console/signin")
            signed = client.post(
                "/console/signin",
                data={"csrf": csrf_of(page), "email": "root@example.com", "password": PASSWORD},
            )
            assert signed.status_code == 303 and signed.headers["location"] == "/console"
            home = client.get("/console")
            assert home.status_code == 200 and "Grace Hopper" in home.text
            assert "Platform operator" in home.text


def test_a_short_password_or_a_malformed_email_makes_nobody(tmp_path: Path) -> None:
    store = str(tmp_path / "quiver.db")
    short = _run_with_stdin(
        "short\n", "admin", "user", "new", "a@example.com", "--password-stdin", "--store", store
    )
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
    malformed = _run_with_stdin(
        f"{PASSWORD}\n", "admin", "user", "new", "nobody", "--password-stdin", "--store", store
    )
    assert malformed.returncode == 1 and "email address" in malformed.stderr
    listed = run_quiver("admin", "user", "list", "--store", store)
    assert listed.stdout.count("\n") == 1, listed.stdout


def test_without_password_stdin_the_password_is_asked_twice(tmp_path: Path) -> None:
    store = str(tmp_path / "quiver.db")
    differ = _run_with_stdin(
        f"{PASSWORD}\n{PASSWORD}x\n", "admin", "user", "new", "a@example.com", "--store", store
    )
    assert differ.returncode == 1 and "the two passwords differ" in differ.stderr
    same = _run_with_stdin(
        f"{PASSWORD}\n{PASSWORD}\n", "admin", "user", "new", "a@example.com", "--store", store
    )
    assert same.returncode == 0, same.stderr
    assert "Password (at least 12 characters):" in same.stderr + same.stdout
    assert PASSWORD not in same.stderr + same.stdout


def _run_with_stdin(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_quiver(*args, stdin=text, timeout=60)
