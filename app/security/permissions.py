"""Permissions and the roles that bundle them.

Checks in the code always name a :class:`Permission`, never a role. A role is
only a named bundle of permissions; a grant gives a user a role, either on all
models or on one model.
"""

from __future__ import annotations

import enum


class Permission(str, enum.Enum):
    """One thing a user may do or see."""

    VIEW_OVERVIEW = "view_overview"
    VIEW_METRICS = "view_metrics"
    VIEW_CONFUSION_MATRIX = "view_confusion_matrix"
    VIEW_ROWS = "view_rows"
    VIEW_INFLUENCE = "view_influence"
    USE_WHAT_IF = "use_what_if"
    USE_LABS = "use_labs"
    VIEW_MONITORING = "view_monitoring"
    VIEW_REPORTS = "view_reports"
    COMMENT = "comment"
    SET_THRESHOLD = "set_threshold"
    MANAGE_MODELS = "manage_models"
    MANAGE_USERS = "manage_users"
    VIEW_AUDIT_LOG = "view_audit_log"
    # Granted to every signed-in user: the shell itself (navigation, router).
    AUTHENTICATED = "authenticated"

    @property
    def label(self) -> str:
        """Return the human-readable name shown in messages."""
        return _LABELS[self]


_LABELS = {
    Permission.VIEW_OVERVIEW: "view overview",
    Permission.VIEW_METRICS: "view metrics",
    Permission.VIEW_CONFUSION_MATRIX: "view confusion matrix",
    Permission.VIEW_ROWS: "view row-level data",
    Permission.VIEW_INFLUENCE: "view feature influence and explanations",
    Permission.USE_WHAT_IF: "use what-if",
    Permission.USE_LABS: "use labs",
    Permission.VIEW_MONITORING: "view monitoring",
    Permission.VIEW_REPORTS: "view reports",
    Permission.COMMENT: "comment",
    Permission.SET_THRESHOLD: "set the classification threshold",
    Permission.MANAGE_MODELS: "manage models",
    Permission.MANAGE_USERS: "manage users",
    Permission.VIEW_AUDIT_LOG: "view audit log",
    Permission.AUTHENTICATED: "sign in",
}

#: Permissions that make sense on one model; the rest are global only.
MODEL_SCOPED = frozenset(
    {
        Permission.VIEW_OVERVIEW,
        Permission.VIEW_METRICS,
        Permission.VIEW_CONFUSION_MATRIX,
        Permission.VIEW_ROWS,
        Permission.VIEW_INFLUENCE,
        Permission.USE_WHAT_IF,
        Permission.VIEW_MONITORING,
        Permission.VIEW_REPORTS,
        Permission.COMMENT,
        Permission.SET_THRESHOLD,
    }
)

_VIEWER = frozenset(
    {
        Permission.AUTHENTICATED,
        Permission.VIEW_OVERVIEW,
        Permission.VIEW_METRICS,
        Permission.VIEW_CONFUSION_MATRIX,
        Permission.VIEW_MONITORING,
        Permission.VIEW_REPORTS,
        Permission.COMMENT,
    }
)
_ANALYST = _VIEWER | {
    Permission.VIEW_ROWS,
    Permission.VIEW_INFLUENCE,
    Permission.USE_WHAT_IF,
    Permission.USE_LABS,
    Permission.SET_THRESHOLD,
}
_ADMIN = frozenset(Permission)

#: Role name -> the permissions it bundles. Ordered from least to most.
ROLES: dict[str, frozenset[Permission]] = {
    "viewer": _VIEWER,
    "analyst": frozenset(_ANALYST),
    "admin": _ADMIN,
}

ROLE_DESCRIPTIONS = {
    "viewer": "Stakeholder: overview, metrics, threshold, confusion-matrix counts, monitoring, reports, comments.",
    "analyst": "Data scientist: every model view, row-level data, explanations, what-if and labs.",
    "admin": "Everything, including users, models and the audit log.",
}


def role_permissions(role: str) -> frozenset[Permission]:
    """Return the permissions bundled in ``role``; raise ValueError if unknown."""
    try:
        return ROLES[role]
    except KeyError:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}") from None
