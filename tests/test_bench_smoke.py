"""The benchmarks in bench/ still run and report every row. Speed is never asserted here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import guard, memory, mypy_plugin_cost, routing
from bench._operations import OPERATION_KEYS, OPERATIONS
from bench._report import write_chart
from bench.runtime import IMPLEMENTATIONS
from tests.conftest import postgresql_binaries

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    """One ``--quick`` run of bench.runtime on sqlite-noio: its results, stdout and output path."""
    output = tmp_path_factory.mktemp("bench") / "runtime.json"
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.runtime",
            "--quick",
            "--databases",
            "sqlite-noio",
            "--no-chart",
            "--output",
            str(output),
            # This very tree as the baseline: the fourth implementation and its table.
            "--baseline",
            str(REPOSITORY),
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    results: dict[str, Any] = json.loads(output.read_text())
    return results, finished.stdout, output


def test_runtime_quick_run_measures_every_operation_on_every_implementation(
    quick_run: tuple[dict[str, Any], str, Path],
) -> None:
    results, _, _ = quick_run
    rows = results["databases"]["sqlite-noio"]["operations"]
    assert [row["key"] for row in rows] == list(OPERATION_KEYS)
    for row in rows:
        for name in IMPLEMENTATIONS:
            assert len(row["samples"]["cpu_ns"][name]) == results["rounds"]
            assert len(row["samples"]["wall_ns"][name]) == results["rounds"]
        for quartiles in row["ratios"].values():
            assert all(math.isfinite(value) for value in quartiles.values()), row["key"]
        assert row["targets"], row["key"]


def test_runtime_quick_run_prints_and_writes_the_table(
    quick_run: tuple[dict[str, Any], str, Path],
) -> None:
    _, stdout, output = quick_run
    table = output.with_suffix(".md").read_text()
    assert table in stdout
    for operation in OPERATIONS:
        assert f"| {operation.label} |" in table


def test_runtime_times_a_baseline_checkout_beside_this_tree(
    quick_run: tuple[dict[str, Any], str, Path],
) -> None:
    results, stdout, _ = quick_run
    assert results["baseline"].startswith("baseline: sa_async")
    for row in results["databases"]["sqlite-noio"]["operations"]:
        assert len(row["samples"]["cpu_ns"]["baseline"]) == results["rounds"]
        assert math.isfinite(row["ratios"]["cpu_vs_baseline"]["median"]), row["key"]
    against = stdout.split("## Against the baseline", 1)[1]
    for operation in OPERATIONS:
        assert f"| {operation.label} |" in against


def test_runtime_chart_is_drawn_from_the_results(
    quick_run: tuple[dict[str, Any], str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib comes with the 'bench' extra")
    results, _, _ = quick_run
    chart = tmp_path / "runtime.png"
    write_chart(results, chart)
    assert chart.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("scenario", "implementation"),
    [(scenario, name) for scenario, names in memory.SCENARIOS.items() for name in names],
)
def test_memory_scenario_runs(scenario: str, implementation: str) -> None:
    found = memory.child(scenario, implementation, count=20, traced=False)
    assert set(found) >= {"peak_rss_bytes", "rss_growth_bytes"}
    if scenario == "scoped":
        assert found.get("sessions_left_in_registry", 0) == 0


def test_memory_child_process_reports_traced_figures() -> None:
    command = ["-m", "bench.memory", "--child", "sessions", "sa_async", "--count", "20", "--traced"]
    finished = subprocess.run(
        [sys.executable, *command],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    found = json.loads(finished.stdout)
    assert set(found) == {"traced_peak_bytes", "retained_bytes"}


def test_guard_benchmark_reports_every_operation_and_variant() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "bench.guard", "--rounds", "2", "--iterations", "5"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    assert "The guard alone" in finished.stdout
    for operation in (*guard.GUARD_OPERATIONS, *guard.CHECK_OPERATIONS):
        assert f"| {operation} |" in finished.stdout
    for variant in guard.SESSION_CLASSES:
        assert f"| {variant} |" in finished.stdout


def test_mypy_plugin_cost_measures_both_phases_of_both_configurations(tmp_path: Path) -> None:
    output = tmp_path / "mypy_plugin.json"
    command = [
        *("-m", "bench.mypy_plugin_cost", "--modules", "5"),
        *("--repeats", "1", "--incremental-runs", "2"),
    ]
    finished = subprocess.run(
        [sys.executable, *command, "--output", str(output)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr
    results = json.loads(output.read_text())
    assert results["project"]["models"] >= 1 and results["project"]["services"] >= 1
    phases = [(run["configuration"], run["phase"]) for run in results["runs"]]
    for configuration in mypy_plugin_cost.CONFIGURATIONS:
        assert phases.count((configuration, "cold")) == 1
        assert phases.count((configuration, "incremental")) == 2
    for phase in mypy_plugin_cost.PHASES:
        for ratio in results["summary"][phase]["ratio"].values():
            assert math.isfinite(ratio["median"]) and ratio["median"] > 0, phase
        assert f"| {phase} |" in output.with_suffix(".md").read_text()


def test_routing_quick_run_measures_every_operation_on_both_layers(tmp_path: Path) -> None:
    postgresql_binaries()  # bench.routing starts its own servers with them
    output = tmp_path / "routing.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench.routing", "--quick", "--output", str(output)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    results = json.loads(output.read_text())
    rows = results["operations"]
    assert [row["key"] for row in rows] == list(routing.OPERATION_KEYS)
    for row in rows:
        for layer in routing.LAYERS:
            assert len(row["samples"]["cpu_ns"][layer]) == results["rounds"]
            assert len(row["samples"]["wall_ns"][layer]) == results["rounds"]
            statements = row["checked_statements"][layer]
            assert statements[row["server"]] > 0, row["key"]
            assert sum(statements.values()) == statements[row["server"]], row["key"]
        for quartiles in row["ratios"].values():
            assert all(math.isfinite(value) for value in quartiles.values()), row["key"]
    table = output.with_suffix(".md").read_text()
    assert table in finished.stdout
    for operation in routing.OPERATIONS:
        assert f"| {operation.label} | {operation.server} |" in table
