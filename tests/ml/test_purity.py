"""app.ml and app.figures stay pure: importing them pulls in neither Dash, Flask nor the data layer."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import app.figures
import app.ml

ROOT = Path(__file__).resolve().parents[2]


def _modules(package) -> list[str]:
    return [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]


def test_pure_packages_import_no_web_or_data_code():
    modules = _modules(app.ml) + _modules(app.figures)
    assert len(modules) >= 5
    code = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'dash', 'flask', 'flask_login', 'data',"
        " 'werkzeug', 'sqlalchemy', 'callbacks', 'layouts'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"impure imports: {out.stdout.strip()}"
