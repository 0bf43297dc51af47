"""mtl_heads.study.estimate: the remaining time of a study from measured rates."""

import pytest

from mtl_heads.study.estimate import busy_warning, estimate
from mtl_heads.study.jobs import plan
from mtl_heads.study.spec import check_study


def test_estimate_from_measured_rates(tiny_study, spec_factory) -> None:
    spec = spec_factory()
    spec["blocks"][0]["seeds"] = [0, 1, 2]
    jobs = plan(check_study(spec, "test"), tiny_study.root / "runs", [], threads=1)
    est = estimate(jobs, tiny_study.results, "tiny", threads=1, concurrency=2, probe=False)
    samples = tiny_study.summary("baseline", 0)["epochs"][0]["samples"]
    for arm in ("baseline", "multitask"):
        row = est["arms"][arm]
        assert (row["runs"], row["finished"], row["source"]) == (3, 2, "measured")
        assert row["samples"] == samples  # one epoch of the one missing seed
        assert row["train_s"] == pytest.approx(samples / row["rate"])
    assert est["wall_hours"] == pytest.approx(est["process_hours"] / 2)
    assert est["overhead_per_run_s"] is not None


@pytest.mark.parametrize("loadavg, cpus, threads, jobs, busy", [
    (0.0, 2, 1, 2, False), (0.4, 2, 1, 2, False), (2.0, 2, 1, 2, True), (1.0, 16, 4, 2, False),
    (10.0, 16, 4, 2, True),
])
def test_probe_warns_on_a_busy_machine(loadavg, cpus, threads, jobs, busy) -> None:
    warning = busy_warning(loadavg, cpus, threads, jobs)
    assert (warning is not None) == busy
    if busy:
        assert f"load average {loadavg:.1f} on {cpus} cores" in warning
