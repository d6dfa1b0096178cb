"""Files of a registered model: the estimator (skops) and its reference data (Parquet).

An estimator is stored and loaded with skops against an explicit list of
trusted types: scikit-learn's public estimators (skops trusts those itself)
plus the few internal scikit-learn and numpy types below. Any other type is
refused with a message naming it. Pickle and joblib files run code when
loaded; they are read only when the caller passes ``trust_pickle=True``
(the admin CLI's ``--trust-pickle``), never for an upload.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

#: Types trusted beyond what skops trusts by default (public scikit-learn estimators,
#: builtins, numpy and scipy basics). Each is plain data inside a fitted scikit-learn model.
#: Deliberately absent: HistGradientBoosting's TreePredictor and the neighbors' KDTree/BallTree,
#: whose raw index arrays scikit-learn trusts without bounds checks (a crafted file can crash
#: the process); skops leaves them untrusted for that reason.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.metrics._scorer._PassthroughScorer",
    "sklearn.model_selection._split.KFold",
    "sklearn.model_selection._split.StratifiedKFold",
)

MODEL_FORMATS = ("skops", "pickle", "joblib")
TABLE_FORMATS = ("csv", "parquet")
_SUFFIX_FORMAT = {".skops": "skops", ".pkl": "pickle", ".pickle": "pickle", ".joblib": "joblib",
                  ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"x\x01", b"x\x5e", b"x\x9c", b"x\xda", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")


class ArtifactError(ValueError):
    """A model or data file that cannot be stored or loaded safely, with the reason."""


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sniff_format(head: bytes) -> str:
    """Return what the first bytes of a file say it is.

    One of "skops" (a zip archive), "pickle", "joblib" (a compressed pickle),
    "parquet", "text" or "unknown".
    """
    if head.startswith(b"PK\x03\x04"):
        return "skops"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if any(head.startswith(m) for m in _COMPRESSED_MAGIC):
        return "joblib"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "text"
        except UnicodeDecodeError as exc:
            # A multi-byte character cut at the end of the sample is still text.
            if exc.start >= len(head) - 3:
                return "text"
    return "unknown"


def _head(path: str | os.PathLike, size: int = 65536) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def format_of(path: str | os.PathLike) -> str:
    """Return the format a file claims by its suffix, checked against its content.

    Raise :class:`ArtifactError` when the content is not what the suffix says
    (a CSV renamed .skops, a pickle renamed .parquet, ...).
    """
    path = Path(path)
    claimed = _SUFFIX_FORMAT.get(path.suffix.lower())
    sniffed = sniff_format(_head(path))
    actual = {"text": "csv"}.get(sniffed, sniffed)
    if claimed is None:
        if actual == "unknown":
            raise ArtifactError(f"{path.name}: unknown file type; use .skops for models and .csv or .parquet for data")
        return actual
    if claimed in ("pickle", "joblib") and actual in ("pickle", "joblib"):
        return claimed
    if claimed != actual:
        described = {"skops": "a zip archive (skops)", "parquet": "a Parquet file", "csv": "text (CSV)",
                     "pickle": "a pickle", "joblib": "a compressed pickle (joblib)",
                     "unknown": "binary data of unknown type"}[actual]
        raise ArtifactError(f"{path.name} is named as {claimed} but its content is {described}")
    return claimed


def estimator_to_bytes(estimator: Any) -> bytes:
    """Serialise ``estimator`` with skops; refuse types outside the trusted list."""
    import skops.io as sio

    try:
        data = sio.dumps(estimator)
    except Exception as exc:  # skops raises TypeError, AttributeError, ... for what it cannot store
        raise ArtifactError(f"the model cannot be stored in the skops format: {exc}") from exc
    check_trusted(data)
    return data


def untrusted_types(data: bytes) -> list[str]:
    """Return the types in a skops dump that are neither skops' defaults nor in TRUSTED_TYPES."""
    import skops.io as sio

    try:
        found = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise ArtifactError(f"not a readable skops file: {exc}") from exc
    return sorted(set(found) - set(TRUSTED_TYPES))


def check_trusted(data: bytes) -> None:
    """Raise :class:`ArtifactError` naming every type of the dump that is not trusted."""
    unknown = untrusted_types(data)
    if unknown:
        raise ArtifactError("the model contains types that Glassbox does not trust: " + ", ".join(unknown)
                            + ". Only scikit-learn estimators and their plain internal types can be loaded.")


def estimator_from_bytes(data: bytes) -> Any:
    """Load a skops dump against the trusted list; unknown types raise :class:`ArtifactError`."""
    import skops.io as sio

    check_trusted(data)
    try:
        return sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:
        raise ArtifactError(f"the skops file could not be loaded: {exc}") from exc


def load_model_file(path: str | os.PathLike, *, trust_pickle: bool = False) -> Any:
    """Load an estimator from a .skops file, or from a pickle/joblib file when ``trust_pickle``.

    Raise :class:`ArtifactError` when the file is not a model file, when a pickle
    is offered without ``trust_pickle``, or when a skops file holds untrusted types.
    """
    path = Path(path)
    fmt = format_of(path)
    if fmt in ("pickle", "joblib"):
        if not trust_pickle:
            raise ArtifactError(f"{path.name} is a {fmt} file; loading it could run arbitrary code. "
                                "Save the model with skops (skops.io.dump) or, from the command line "
                                "and only for a file you trust, pass --trust-pickle.")
        import joblib

        log.warning("loading %s with pickle because trust_pickle was given", path.name)
        try:
            return joblib.load(path)
        except Exception as exc:
            raise ArtifactError(f"{path.name} could not be unpickled: {exc}") from exc
    if fmt != "skops":
        raise ArtifactError(f"{path.name} is not a model file (it is {fmt}); expected a .skops file")
    data = path.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "schema.json" not in archive.namelist():
                raise ArtifactError(f"{path.name} is a zip archive but not a skops file (no schema.json)")
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"{path.name} is not a valid skops archive: {exc}") from exc
    try:
        return estimator_from_bytes(data)
    except ArtifactError as exc:
        raise ArtifactError(f"{path.name}: {exc}") from exc


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet file (format checked against content) into a DataFrame."""
    path = Path(path)
    fmt = format_of(path)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
            _release_arrow_memory()
            return frame
        if fmt == "csv":
            return pd.read_csv(path)
    except Exception as exc:
        raise ArtifactError(f"{path.name} could not be read as {fmt}: {exc}") from exc
    raise ArtifactError(f"{path.name} is not a data file (it is {fmt}); expected .csv or .parquet")


def write_frame(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``frame`` to Parquet (the index is not kept)."""
    frame.to_parquet(path, index=False)


def read_frame(path: str | os.PathLike) -> pd.DataFrame:
    """Read a Parquet file written by :func:`write_frame`."""
    frame = pd.read_parquet(path)
    _release_arrow_memory()
    return frame


def _release_arrow_memory() -> None:
    # Arrow's allocator keeps freed buffers for reuse; each Parquet read would otherwise leave
    # several megabytes per worker behind after the frame has been converted to pandas.
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except (ImportError, AttributeError):
        pass
