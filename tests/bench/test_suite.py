"""``recsys bench``'s driver: it runs every benchmark whatever the others did, and writes the summary on top."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import Figure, write_section
from benchmarks.suite import Benchmark, run_suite

STUB = "tests.bench.stub_benchmark"
OTHER_SECTION = ["<!-- scale:begin -->", "scale table", "<!-- scale:end -->"]


def test_a_result_line_reads_back_as_its_figure() -> None:
    figure = Figure("p99 | 5 ms", "bare: 4 ms", "1.25x", "≤ 2x", True)
    assert Figure.parse(figure.line()) == Figure("p99 / 5 ms", "bare: 4 ms", "1.25x", "≤ 2x", True)
    reported = Figure("updater: 700 events/s", "-", "-", "reported", None)
    assert Figure.parse(reported.line()) == reported
    assert Figure.parse("lines: 1,000 (loaded 990)") is None


def test_the_suite_goes_on_after_a_failure_and_says_what_did_not_run(tmp_path: Path) -> None:
    report = tmp_path / "BENCHMARKS.md"
    report.write_text("# Benchmarks\n\nIntroduction.\n\n## Scale\n\n" + "\n".join(OTHER_SECTION) + "\n")
    benchmarks = (
        Benchmark("failing", STUB, ("3",)),
        Benchmark("absent", "benchmarks.bench_not_written_yet", ()),
        Benchmark("passing", STUB, ("0",)),
    )

    assert run_suite(benchmarks, quick=True, report=report) == 1

    text = report.read_text()
    summary = text[text.index("<!-- summary:begin -->") : text.index("<!-- summary:end -->")]
    assert text.index("## Summary") < text.index("Introduction.") < text.index("\n".join(OTHER_SECTION))
    assert "`recsys bench --quick`" in summary
    assert "Mode: `--quick`" in summary
    assert "| failing | **failed (exit 3)**: see its output |" in summary
    assert "| absent | not measured: `benchmarks.bench_not_written_yet` is not in this checkout |" in summary
    # A failed benchmark's figures printed before it failed are kept; each row says whether its goal was met.
    assert summary.count("| stub load: 10 docs/s | stub anchor: 20 docs/s | 0.50x | ≥ 0.7x | **no** |") == 2
    assert summary.count("| stub latency: p99 5 ms | stub bare: p99 4 ms | 1.25x | ≤ 2x | yes |") == 2


def test_a_second_run_replaces_the_summary_and_leaves_the_sections(tmp_path: Path) -> None:
    report = tmp_path / "BENCHMARKS.md"
    write_section("scale", ["scale table"], "## Scale", report=report)

    assert run_suite((Benchmark("failing", STUB, ("3",)),), quick=True, report=report) == 1
    assert run_suite((Benchmark("passing", STUB, (), ("0",)),), quick=False, report=report) == 0

    text = report.read_text()
    assert text.count("<!-- summary:begin -->") == 1
    assert "failing" not in text
    assert "Mode: full." in text
    assert "| passing | stub load: 10 docs/s |" in text
    assert text.endswith("## Scale\n\n" + "\n".join(OTHER_SECTION) + "\n")
