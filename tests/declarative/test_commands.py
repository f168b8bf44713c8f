"""quiver apply, diff, dump and rollback against a running `quiver serve --store`."""

from __future__ import annotations

import re

import httpx
import yaml

from tests.declarative.conftest import TOKEN, Gateway
from tests.support.process import run_quiver

FIRST = """\
targets:
  - name: orders
    url: http://127.0.0.1:9001
routes:
  - name: orders
    paths: [/orders]
    target: orders
consumers:
  - name: shop
    credentials:
      key-auth: [{key: "${SHOP_KEY}"}]
"""


def test_apply_then_diff_then_dump_round_trip(gateway: Gateway) -> None:
    name = gateway.write(FIRST)
    code, out, err = gateway.quiver("diff", "-c", name)
    assert code == 1, err
    assert "+ route orders" in out and "+ consumer shop" in out
    code, out, err = gateway.quiver("apply", "-c", name, "-m", "orders API")
    assert code == 0, err
    assert re.search(r"revision \d+ applied", out)
    assert gateway.quiver("diff", "-c", name)[:2] == (0, "no changes\n"), "in sync"
    code, out, err = gateway.quiver("apply", "-c", name)
    assert (code, out) == (0, "no changes\n"), "applying again changes nothing"

    code, dumped, err = gateway.quiver("dump")
    assert code == 0, err
    assert "shop-key-0123456789" not in dumped, "never a secret in clear"
    document = yaml.safe_load(dumped)
    [consumer] = document["consumers"]
    assert consumer["credentials"]["key-auth"][0]["key_hash"].startswith("sha256:")
    gateway.write(dumped, "dumped.yaml")
    assert gateway.quiver("diff", "-c", "dumped.yaml")[0] == 0, "the dump is the same declaration"
    assert gateway.quiver("dump", "-o", "out.yaml")[0] == 0
    assert (gateway.cwd / "out.yaml").read_text() == dumped


def test_a_changed_file_diffs_per_entity_and_rolls_back(gateway: Gateway) -> None:
    gateway.quiver("apply", "-c", gateway.write(FIRST))
    changed = FIRST.replace("[/orders]", "[/orders/v2]")
    code, out, _ = gateway.quiver("diff", "-c", gateway.write(changed, "v2.yaml"))
    assert code == 1
    assert out.splitlines() == [
        "~ route orders",
        "     paths:",
        "    -- /orders",
        "    +- /orders/v2",
        "     target: orders",
        "1 change: 1 changed",
    ]
    code, out, err = gateway.quiver("apply", "-c", "v2.yaml", "-m", "v2")
    number = int(re.search(r"revision (\d+) applied", out).group(1))  # type: ignore[union-attr]
    code, out, err = gateway.quiver("rollback", str(number - 1), "-m", "back to v1")
    assert code == 0, err
    assert f"restores revision {number - 1}" in out
    assert gateway.quiver("diff", "-c", "api.yaml")[0] == 0


def test_an_invalid_file_is_refused_with_its_lines_and_nothing_changes(gateway: Gateway) -> None:
    bad = FIRST.replace("target: orders", "target: order")
    code, _, err = gateway.quiver("apply", "-c", gateway.write(bad))
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == "quiver: invalid config (1 problem(s)):", err
    assert re.fullmatch(r"  api\.yaml:7: routes\[0\]\.target: unknown target 'order'.*", lines[1])
    headers = {"Authorization": f"Bearer {TOKEN}"}
    document = httpx.get(f"{gateway.admin}/config", headers=headers).json()["document"]
    assert "orders" not in str(document.get("routes", []))


def test_settings_in_the_file_are_left_out_with_a_note(gateway: Gateway) -> None:
    code, _, err = gateway.quiver("apply", "-c", gateway.write("listen: 127.0.0.1:9\n" + FIRST))
    assert code == 0, err
    assert "listen left out" in err


def test_without_a_valid_token_or_admin_the_commands_say_why(gateway: Gateway) -> None:
    code, _, err = gateway.quiver("dump", token="qv_wrong")
    assert code == 1 and "QUIVER_ADMIN_TOKEN" in err and "401" in err
    done = run_quiver("dump", "--admin", "http://127.0.0.1:9", env={"QUIVER_ADMIN_TOKEN": TOKEN})
    assert done.returncode == 1 and "cannot reach the admin API" in done.stderr
    done = run_quiver("diff", "-c", "missing.yaml", "--admin", gateway.admin, cwd=gateway.cwd)
    assert done.returncode == 2 and "cannot read config file" in done.stderr


def test_teams_apply_apart(gateway: Gateway) -> None:
    gateway.quiver("apply", "-c", gateway.write(FIRST))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    created = httpx.post(f"{gateway.admin}/teams", json={"name": "pay"}, headers=headers)
    assert created.status_code == 201, created.text
    payments = FIRST.replace("shop", "till").replace("${SHOP_KEY}", "till-key-0123456789")
    code, _, err = gateway.quiver("apply", "-c", gateway.write(payments, "p.yaml"), "--team", "pay")
    assert code == 0, err
    assert gateway.quiver("diff", "-c", "p.yaml", "--team", "pay")[0] == 0
    assert gateway.quiver("diff", "-c", "api.yaml")[0] == 0, "the default team is untouched"
