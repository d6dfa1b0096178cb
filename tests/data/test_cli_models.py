"""The model commands of the glassbox CLI, run against a test app."""

from __future__ import annotations

import json
import pickle

import pytest
import skops.io as sio
from sqlalchemy import select

from app.cli_models import analyses, models, register
from data.models import AuditEvent
from data.registry import get_version


@pytest.fixture
def files(tmp_path, binary_case):
    model, train, test = binary_case
    sio.dump(model, tmp_path / "model.skops")
    with open(tmp_path / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_parquet(tmp_path / "test.parquet", index=False)
    return tmp_path


def run(app, command, args):
    return app.test_cli_runner().invoke(command, args, catch_exceptions=False)


def register_args(files, *extra):
    return ["--name", "churn", "--model", str(files / "model.skops"), "--train", str(files / "train.csv"),
            "--test", str(files / "test.parquet"), "--target", "label", "--group-column", "region",
            "--positive-class", "yes", "--description", "from the CLI", "--tag", "cli", *extra]


def audit_actions(db):
    with db.session() as s:
        return [(e.action, e.target, e.outcome) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_register_list_describe_and_analyses(app, db, files):
    result = run(app, register, register_args(files, "--run-analyses"))
    assert result.exit_code == 0, result.output
    assert "registered churn v1 (binary, 300 train / 100 test rows, 5 features)" in result.output
    with db.session() as s:
        version = get_version(s, "churn")
        assert version.created_by.startswith("cli") and version.tags == ["cli"]
        assert version.metrics["n"] == 100
    listing = run(app, models, ["list"]).output
    assert "churn" in listing and "v1" in listing and "ready" in listing
    described = json.loads(run(app, models, ["describe", "churn", "--json"]).output)
    assert described["positive_class"] == "yes" and described["group_columns"] == ["region"]
    assert set(described["analyses"].values()) == {"ready"}
    assert "ready" in run(app, analyses, ["status", "churn"]).output
    assert ("model.register", "churn v1", "success") in audit_actions(db)


def test_refused_registration_exits_with_the_message(app, db, files):
    result = app.test_cli_runner().invoke(register, register_args(files)[:-8] + ["--target", "nope"])
    assert result.exit_code == 1
    assert "registration refused: the target column 'nope' is missing from the train data" in result.output
    assert ("model.register", "churn", "failure") in audit_actions(db)


def test_size_limit(app, db, files):
    small_enough = app.test_cli_runner().invoke(register, register_args(files, "--max-size-mb", "1"))
    assert small_enough.exit_code == 0, small_enough.output
    big = files / "big.csv"
    big.write_bytes(b"x" * (1024 * 1024 + 10))
    args = register_args(files, "--max-size-mb", "1")
    args[args.index("--train") + 1] = str(big)
    too_large = app.test_cli_runner().invoke(register, args)
    assert too_large.exit_code == 1 and "train file big.csv is 1.0 MB; the limit is 1.0 MB" in too_large.output


def test_pickle_needs_the_flag(app, db, files):
    args = register_args(files)
    args[args.index("--model") + 1] = str(files / "model.pkl")
    refused = app.test_cli_runner().invoke(register, args)
    assert refused.exit_code == 1 and "--trust-pickle" in refused.output
    accepted = run(app, register, args + ["--trust-pickle"])
    assert accepted.exit_code == 0 and "registered churn v1" in accepted.output


def test_archive_and_delete(app, db, files):
    run(app, register, register_args(files))
    run(app, register, register_args(files))
    assert "archived churn" in run(app, models, ["archive", "churn"]).output
    assert "churn" not in run(app, models, ["list"]).output
    assert "churn" in run(app, models, ["list", "--all"]).output
    run(app, models, ["archive", "churn", "--undo"])
    assert "deleted churn v1" in run(app, models, ["delete", "churn", "--version", "1", "--yes"]).output
    aborted = app.test_cli_runner().invoke(models, ["delete", "churn"], input="n\n")
    assert aborted.exit_code == 1
    assert "deleted churn v2" in run(app, models, ["delete", "churn", "--yes"]).output
    missing = app.test_cli_runner().invoke(models, ["delete", "churn", "--yes"])
    assert missing.exit_code == 1 and "no model named 'churn'" in missing.output
    actions = audit_actions(db)
    assert ("model.archive", "churn", "success") in actions
    assert ("model.delete", "churn v1", "success") in actions


def test_retry(app, db, files):
    run(app, register, register_args(files))
    from data.analysis_cache import AnalysisResult

    with db.session() as s:
        row = s.scalars(select(AnalysisResult)).first()
        row.status, row.error = "failed", "boom"
    assert "queued 1 failed analyses of churn v1 again" in run(app, analyses, ["retry", "churn"]).output
    missing = app.test_cli_runner().invoke(analyses, ["retry", "nope"])
    assert missing.exit_code == 1 and "no model 'nope'" in missing.output
