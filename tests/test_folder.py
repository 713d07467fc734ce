"""dplib.run.folder: a run's files, named in one place, and its state read from them alone."""

import json

from dplib.run import claims
from dplib.run.folder import run_state


def test_run_state_follows_the_claim_and_the_status(tmp_path):
    run = tmp_path / "run"
    assert run_state(run) == "pending"
    run.mkdir()
    (run / "status.json").write_text(json.dumps({"state": "running", "host": "elsewhere", "pid": 1}))
    assert run_state(run) == "interrupted"  # says running, but nobody holds it
    claim = claims.take(run)
    assert run_state(run) == "running"
    (run / "status.json").unlink()
    assert run_state(run) == "queued"  # held, not executing yet
    claim.release()
    (run / "status.json").write_text(json.dumps({"state": "interrupted"}))
    assert run_state(run) == "interrupted"
    (run / "result.json").write_text("{")  # half-written: not complete
    assert run_state(run) == "interrupted"
    (run / "result.json").write_text("{}")
    assert run_state(run) == "completed"
