"""Alert rules pass their promtool unit tests; every metric they and the dashboard name is
exported by the running service."""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from app.main import create_app
from tests.conftest import REPO, SettingsFactory
from tests.support.apps import running
from tests.support.debian import ensure_binary

PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "oms-auth-dashboard.json"
METRIC = re.compile(r"\boms_auth_[a-z0-9_]+")
RECORDED = re.compile(r"\boms_auth:[a-z0-9_:]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _rules() -> list[dict[str, object]]:
    data = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _expressions() -> list[str]:
    exprs = [str(rule["expr"]) for rule in _rules()]
    dashboard = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return exprs


def _family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    promtool = ensure_binary("promtool", "prometheus")
    check = subprocess.run(
        [promtool, "check", "rules", "alerts.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run(
        [promtool, "test", "rules", "tests/alerts_test.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(run.stdout + run.stderr)
    assert run.returncode == 0 and "SUCCESS" in run.stdout, run.stdout + run.stderr


def test_every_alert_has_a_runbook_in_the_operations_guide() -> None:
    guide = (REPO / "docs" / "operations.md").read_text()
    alerts = [r for r in _rules() if "alert" in r]
    assert len(alerts) >= 8
    for rule in alerts:
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        anchor = str(annotations["runbook"]).split("#", 1)[1]
        assert anchor == f"runbook-{str(rule['alert']).lower()}"
        assert f"### {rule['alert']}" in guide, rule["alert"]


def test_recording_rules_used_by_alerts_and_dashboard_are_defined() -> None:
    recorded = {str(r["record"]) for r in _rules() if "record" in r}
    used = {name for expr in _expressions() for name in RECORDED.findall(expr)}
    assert used and used <= recorded, used - recorded


async def test_every_metric_in_alerts_and_dashboard_is_exported(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    named = {_family(m) for expr in _expressions() for m in METRIC.findall(expr)}
    assert len(named) >= 15
    app = create_app(make_settings(redis_url=redis_url, decision_log_enabled=True))
    async with running(app) as client:
        text = (await client.get("/metrics")).text
    exported = set(re.findall(r"^# TYPE (oms_auth_[a-z0-9_]+) ", text, re.M))
    exported = {_family(name) for name in exported}
    missing = named - exported
    assert not missing, f"named in deploy/ but not exported: {sorted(missing)}"


def test_metrics_are_documented_in_the_operations_guide() -> None:
    guide = (REPO / "docs" / "operations.md").read_text()
    named = {_family(m) for expr in _expressions() for m in METRIC.findall(expr)}
    undocumented = sorted(n for n in named if f"`{n}" not in guide)
    assert not undocumented, undocumented


def test_dashboard_is_valid_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(
        p["targets"] and p["datasource"]["type"] == "prometheus" for p in dashboard["panels"]
    )
