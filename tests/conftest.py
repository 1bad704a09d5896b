"""The whole suite's hooks: the run's summary names the manifest's models not built here.

``./hr test`` builds the runtime assets and the models made by conversion alone (``python -m builder
test``); the four task-model trainings and the bigger chat model are built by ``./hr build``. The tests of a
model that is not built skip; this summary says which models those are and how to build them, so a skip is
never silent.
"""

from __future__ import annotations

from typing import Any


def _not_built() -> list[str]:
    try:
        from builder.models import built_files, load_manifest, read_index

        manifest, index = load_manifest(), read_index()
        return [m.id for m in manifest.models if m.id not in index or built_files(m) is None]
    except Exception:  # a summary line must never fail a run
        return []


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    missing = _not_built()
    if not missing:
        return
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "not built" in str(r.longrepr)]
    terminalreporter.write_sep("-", "models not built here")
    what = (
        f"{len(skipped)} test(s) skipped for a model not built"
        if skipped
        else "not built here, and no test of this run was skipped for them"
    )
    terminalreporter.write_line(
        f"{', '.join(missing)}: {what}. `./hr build` builds "
        "every model (the four trainings about 47 min, the bigger chat model about 35 min on 2 cores); "
        "`./hr test` then runs their tests too."
    )
