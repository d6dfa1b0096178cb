"""The model registry: named models, their immutable versions, and the files behind them.

A version is an estimator (skops file), its reference data (train and test
Parquet files with the target and any group columns), feature metadata and a
task. Registering an existing name adds a version. Everything is validated
before anything is written (:mod:`data.validation`); a failed registration
leaves no row and no file.

From a notebook::

    from data.registry import register_model
    version = register_model(pipeline, train_df, test_df, name="churn", target="churned",
                             created_by="alice")

Inside the Flask app the database and artifact folder come from the app's
settings; elsewhere from ``GLASSBOX_DATABASE_URL`` and ``GLASSBOX_ARTIFACT_DIR``
(default: the project's ``instance/`` folder).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint,
                        func, select)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from data import artifacts
from data.db import Base, Database, utcnow
from data.validation import DEFAULT_MAX_BYTES, RegistrationError, check_file, validate_registration

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_REASON_LENGTH = 500


class ModelRecord(Base):
    """A named model; its versions hold everything else."""

    __tablename__ = "models"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    archived: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.number", cascade="all, delete-orphan",
        passive_deletes=True, lazy="selectin")

    @property
    def latest(self) -> ModelVersion | None:
        """Return the newest version, or None for a model without versions."""
        return self.versions[-1] if self.versions else None


class ModelVersion(Base):
    """One immutable registration of a model: estimator, reference data, metadata."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "number", name="uq_model_versions_model_number"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), nullable=False, index=True)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    tags: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    task: Mapped[str] = mapped_column(String(16), nullable=False)
    target: Mapped[str] = mapped_column(String(255), nullable=False)
    positive_class: Mapped[Any] = mapped_column(JSON, nullable=True)
    classes: Mapped[list | None] = mapped_column(JSON, nullable=True)
    features: Mapped[list] = mapped_column(JSON, nullable=False)
    group_columns: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    feature_meta: Mapped[list] = mapped_column(JSON, nullable=False)
    storage_dir: Mapped[str] = mapped_column(String(1024), nullable=False)
    artifact_path: Mapped[str] = mapped_column(String(1024), nullable=False)
    train_path: Mapped[str] = mapped_column(String(1024), nullable=False)
    test_path: Mapped[str] = mapped_column(String(1024), nullable=False)
    artifact_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    train_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    test_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    artifact_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    train_rows: Mapped[int] = mapped_column(Integer, nullable=False)
    test_rows: Mapped[int] = mapped_column(Integer, nullable=False)
    #: Key test metrics, filled in when the test-metrics analysis is ready.
    metrics: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: The saved operating threshold of a binary model: {value, reason, set_by, set_at}.
    threshold: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    model: Mapped[ModelRecord] = relationship(back_populates="versions", lazy="joined")

    @property
    def name(self) -> str:
        """Return the model's name."""
        return self.model.name

    @property
    def label(self) -> str:
        """Return "name v3"."""
        return f"{self.model.name} v{self.number}"


# -- defaults inside and outside the Flask app ---------------------------------

def _flask_app():
    try:
        from flask import current_app, has_app_context
    except ImportError:  # pragma: no cover - flask is a dependency
        return None
    return current_app if has_app_context() else None


def default_db() -> Database:
    """Return the Flask app's Database, or one on ``GLASSBOX_DATABASE_URL`` (default: instance/glassbox.db)."""
    app = _flask_app()
    if app is not None:
        return app.extensions["glassbox.db"]
    url = os.environ.get("GLASSBOX_DATABASE_URL")
    if not url:
        instance = Path(os.environ.get("GLASSBOX_INSTANCE_PATH") or PROJECT_ROOT / "instance")
        url = f"sqlite:///{instance.resolve() / 'glassbox.db'}"
    return Database(url)


def default_artifact_dir() -> Path:
    """Return where artifacts go: the app's GLASSBOX_ARTIFACT_DIR, else the environment's, else instance/artifacts."""
    app = _flask_app()
    if app is not None:
        return Path(app.config["GLASSBOX_ARTIFACT_DIR"])
    if os.environ.get("GLASSBOX_ARTIFACT_DIR"):
        return Path(os.environ["GLASSBOX_ARTIFACT_DIR"])
    instance = Path(os.environ.get("GLASSBOX_INSTANCE_PATH") or PROJECT_ROOT / "instance")
    return instance.resolve() / "artifacts"


# -- registering ---------------------------------------------------------------

def _clean_user(created_by: Any) -> str:
    if not isinstance(created_by, str) or not created_by.strip() or len(created_by) > 64:
        raise RegistrationError("created_by must name who registers the model (at most 64 characters)")
    return created_by.strip()


def register_model(estimator: Any, train: pd.DataFrame, test: pd.DataFrame, *, name: str, target: str,
                   created_by: str, positive_class: Any = None, group_columns: Iterable[str] = (),
                   description: str = "", tags: Iterable[str] = (), task: str | None = None,
                   feature_overrides: dict | None = None, db: Database | None = None,
                   artifact_dir: str | os.PathLike | None = None) -> ModelVersion:
    """Validate and register a fitted estimator with its train and test frames as a new version.

    The frames hold the model's input columns, the target and any group
    columns (kept for fairness views, not fed to the model). Raise
    :class:`~data.validation.RegistrationError` naming the problem when
    anything is wrong; nothing is written then. The analyses of the new
    version are queued; the running server computes them (or call
    :func:`data.analysis_cache.run_pending`).
    """
    created_by = _clean_user(created_by)
    checked = validate_registration(
        estimator, train, test, name=name, target=target, positive_class=positive_class,
        group_columns=tuple(group_columns or ()), task=task, description=description or "",
        tags=tuple(tags or ()), feature_overrides=feature_overrides)
    db = db or default_db()
    root = Path(artifact_dir) if artifact_dir is not None else default_artifact_dir()
    return _store(db, root, checked, train, test, created_by=created_by)


def _store(db: Database, root: Path, checked, train: pd.DataFrame, test: pd.DataFrame, *,
           created_by: str) -> ModelVersion:
    model_root = root / checked.name
    model_root_existed = model_root.exists()
    folder = model_root / f"v-{uuid.uuid4().hex[:12]}"
    try:
        folder.mkdir(parents=True, exist_ok=False)
        model_path = folder / "model.skops"
        model_path.write_bytes(checked.artifact)
        columns = checked.features + [c for c in checked.group_columns if c not in checked.features] + [checked.target]
        paths = {}
        for split, frame in (("train", train), ("test", test)):
            paths[split] = folder / f"{split}.parquet"
            artifacts.write_frame(frame[columns].reset_index(drop=True), paths[split])
        with db.session() as session:
            record = session.scalar(select(ModelRecord).where(ModelRecord.name == checked.name))
            if record is None:
                record = ModelRecord(name=checked.name)
                session.add(record)
                session.flush()
            elif record.archived:
                log.info("registering a new version of archived model %s: it is shown again", record.name)
                record.archived = False
            number = (session.scalar(select(func.max(ModelVersion.number))
                                     .where(ModelVersion.model_id == record.id)) or 0) + 1
            version = ModelVersion(
                model=record, number=number, created_by=created_by, description=checked.description,
                tags=checked.tags, task=checked.task, target=checked.target,
                positive_class=checked.positive_class, classes=checked.classes, features=checked.features,
                group_columns=checked.group_columns, feature_meta=checked.feature_meta,
                storage_dir=str(folder.resolve()), artifact_path=str(model_path.resolve()),
                train_path=str(paths["train"].resolve()), test_path=str(paths["test"].resolve()),
                artifact_bytes=len(checked.artifact), train_bytes=paths["train"].stat().st_size,
                test_bytes=paths["test"].stat().st_size, artifact_sha256=artifacts.sha256_bytes(checked.artifact),
                train_rows=len(train), test_rows=len(test))
            session.add(version)
            session.flush()
            from data.analysis_cache import enqueue_all

            enqueue_all(session, version)
    except IntegrityError as exc:
        _remove(folder, model_root if not model_root_existed else None)
        raise RegistrationError(f"another registration of {checked.name!r} was saved at the same moment; "
                                "try again") from exc
    except BaseException:
        _remove(folder, model_root if not model_root_existed else None)
        raise
    log.info("registered %s v%d (%s, %d train / %d test rows) by %s", checked.name, version.number,
             checked.task, len(train), len(test), created_by)
    return version


def _remove(folder: Path, empty_parent: Path | None) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if empty_parent is not None:
        try:
            empty_parent.rmdir()
        except OSError:
            pass


def register_files(*, name: str, model_path: str | os.PathLike, train_path: str | os.PathLike,
                   test_path: str | os.PathLike, target: str, created_by: str, positive_class: Any = None,
                   group_columns: Iterable[str] = (), description: str = "", tags: Iterable[str] = (),
                   task: str | None = None, trust_pickle: bool = False, max_bytes: int = DEFAULT_MAX_BYTES,
                   db: Database | None = None, artifact_dir: str | os.PathLike | None = None) -> ModelVersion:
    """Register from files: a model (.skops; pickle/joblib only with ``trust_pickle``) and CSV/Parquet data.

    The CLI and the admin upload page both use this; the checks are those of
    :func:`register_model` plus size and format checks on each file.
    """
    model_kinds = ("skops", "pickle", "joblib") if trust_pickle else ("skops",)
    try:
        check_file(model_path, label="model", kinds=model_kinds, max_bytes=max_bytes)
    except RegistrationError as exc:
        fmt = _sniffed(model_path)
        if fmt in ("pickle", "joblib") and not trust_pickle:
            name = Path(model_path).name
            what = (f"{name} is named as skops but its content is a {fmt}"
                    if name.lower().endswith(".skops") else f"the model file {name} is a {fmt} file")
            raise RegistrationError(
                f"{what}; pickle can run arbitrary code when loaded. Save the model with skops.io.dump, or "
                "(command line only, for a file you trust) pass --trust-pickle.") from exc
        raise
    check_file(train_path, label="train", kinds=artifacts.TABLE_FORMATS, max_bytes=max_bytes)
    check_file(test_path, label="test", kinds=artifacts.TABLE_FORMATS, max_bytes=max_bytes)
    try:
        estimator = artifacts.load_model_file(model_path, trust_pickle=trust_pickle)
        train = artifacts.read_table(train_path)
        test = artifacts.read_table(test_path)
    except artifacts.ArtifactError as exc:
        raise RegistrationError(str(exc)) from exc
    return register_model(estimator, train, test, name=name, target=target, created_by=created_by,
                          positive_class=positive_class, group_columns=group_columns, description=description,
                          tags=tags, task=task, db=db, artifact_dir=artifact_dir)


def _sniffed(path: str | os.PathLike) -> str:
    try:
        with open(path, "rb") as fh:
            return artifacts.sniff_format(fh.read(64))
    except OSError:
        return "unknown"


# -- loading (cached per process: versions never change) -----------------------

@functools.lru_cache(maxsize=16)
def _estimator(version_id: int, path: str, sha256: str) -> Any:
    data = Path(path).read_bytes()
    if artifacts.sha256_bytes(data) != sha256:
        raise artifacts.ArtifactError(f"the model file of version {version_id} has changed on disk "
                                      "(checksum mismatch); refusing to load it")
    return artifacts.estimator_from_bytes(data)


@functools.lru_cache(maxsize=8)
def _frames(version_id: int, train_path: str, test_path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return artifacts.read_frame(train_path), artifacts.read_frame(test_path)


def load_estimator(version: ModelVersion) -> Any:
    """Return the version's fitted estimator (loaded once per process; do not modify it)."""
    return _estimator(version.id, version.artifact_path, version.artifact_sha256)


def load_frames(version: ModelVersion) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the version's (train, test) frames (loaded once per process; treat them as read-only)."""
    return _frames(version.id, version.train_path, version.test_path)


def clear_caches() -> None:
    """Forget the loaded estimators and frames of this process (tests, memory pressure)."""
    _estimator.cache_clear()
    _frames.cache_clear()


# -- queries -------------------------------------------------------------------

def list_models(session: Session, *, visible: set[str] | None = None,
                include_archived: bool = False) -> list[ModelRecord]:
    """Return the models (with versions) ordered by name; ``visible`` limits them to those names."""
    query = select(ModelRecord).order_by(ModelRecord.name)
    if not include_archived:
        query = query.where(ModelRecord.archived.is_(False))
    if visible is not None:
        if not visible:
            return []
        query = query.where(ModelRecord.name.in_(sorted(visible)))
    return [m for m in session.scalars(query) if m.versions]


def get_model(session: Session, name: str) -> ModelRecord | None:
    """Return the model called ``name`` or None."""
    if not isinstance(name, str):
        return None
    return session.scalar(select(ModelRecord).where(ModelRecord.name == name))


def get_version(session: Session, name: str, version: int | None = None) -> ModelVersion | None:
    """Return version ``version`` of model ``name`` (the latest when None), or None if there is none."""
    record = get_model(session, name)
    if record is None or not record.versions:
        return None
    if version is None:
        return record.latest
    for v in record.versions:
        if v.number == version:
            return v
    return None


def get_version_by_id(session: Session, version_id: int) -> ModelVersion | None:
    """Return the version with primary key ``version_id`` or None."""
    return session.get(ModelVersion, version_id)


def archive_model(session: Session, name: str, *, archived: bool = True) -> ModelRecord:
    """Hide (or show again) a model; its versions and files are kept. Raise KeyError if unknown."""
    record = get_model(session, name)
    if record is None:
        raise KeyError(f"no model named {name!r}")
    record.archived = archived
    return record


def delete_model(db: Database, name: str, *, version: int | None = None) -> list[str]:
    """Delete a model (or one of its versions) with its analyses and files; return the labels deleted.

    Rows go first, in one transaction; the files are removed after it commits.
    Raise KeyError when the model or version does not exist.
    """
    with db.session() as session:
        record = get_model(session, name)
        if record is None:
            raise KeyError(f"no model named {name!r}")
        if version is None:
            doomed = list(record.versions)
            session.delete(record)
        else:
            doomed = [v for v in record.versions if v.number == version]
            if not doomed:
                raise KeyError(f"model {name!r} has no version {version}")
            session.delete(doomed[0])
            if len(record.versions) == 1:
                session.delete(record)
        folders = [v.storage_dir for v in doomed]
        labels = [f"{name} v{v.number}" for v in doomed]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    parent = Path(folders[0]).parent if folders else None
    if parent is not None and parent.exists() and not any(parent.iterdir()):
        parent.rmdir()
    log.info("deleted %s", ", ".join(labels))
    return labels


def save_threshold(session: Session, version_id: int, *, value: float, reason: str, set_by: str) -> dict:
    """Save the operating threshold of a binary model version; return what was saved.

    Raise ValueError when the version is unknown or not binary, the value is
    not a number in [0, 1], or the reason is empty or too long.
    """
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise ValueError(f"no model version with id {version_id!r}")
    if version.task != "binary":
        raise ValueError(f"{version.label} is {version.task}; a threshold applies to binary models only")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise ValueError(f"threshold must be a number between 0 and 1; got {value!r}")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("a reason for the threshold is required")
    if len(reason) > MAX_REASON_LENGTH:
        raise ValueError(f"the reason must be at most {MAX_REASON_LENGTH} characters")
    if not isinstance(set_by, str) or not set_by:
        raise ValueError("set_by must name the user")
    saved = {"value": float(value), "reason": reason.strip(), "set_by": set_by,
             "set_at": utcnow().isoformat(timespec="seconds")}
    version.threshold = saved
    return saved


def clear_threshold(session: Session, version_id: int) -> None:
    """Remove the saved threshold of a version (the views fall back to 0.5)."""
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise ValueError(f"no model version with id {version_id!r}")
    version.threshold = None

