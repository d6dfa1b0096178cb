"""monitoring: API tokens, prediction log, hourly and daily roll-ups, alerts, notifications, comments, reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_rate_counters",
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window", name=op.f("pk_api_rate_counters")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_api_tokens_model_id_models"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_model_id"), ["model_id"], unique=False)

    op.create_table(
        "prediction_logs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(length=128), nullable=False),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("codes", sa.Text(), nullable=False),
        sa.Column("prediction", sa.JSON(), nullable=False),
        sa.Column("pred_label", sa.String(length=200), nullable=True),
        sa.Column("pred_pos", sa.SmallInteger(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("score_bin", sa.SmallInteger(), nullable=True),
        sa.Column("pred_bin", sa.SmallInteger(), nullable=True),
        sa.Column("outlier", sa.Float(), nullable=True),
        sa.Column("anomalies", sa.SmallInteger(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("label_value", sa.Float(), nullable=True),
        sa.Column("label_pos", sa.SmallInteger(), nullable=True),
        sa.Column("correct", sa.SmallInteger(), nullable=True),
        sa.Column("err", sa.Float(), nullable=True),
        sa.Column("labelled_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_prediction_logs_model_id_models"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name=op.f("fk_prediction_logs_version_id_model_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_logs")),
        sa.UniqueConstraint("model_id", "record_id", name="uq_prediction_logs_model_record"),
    )
    with op.batch_alter_table("prediction_logs", schema=None) as batch_op:
        batch_op.create_index("ix_prediction_logs_version_hour", ["version_id", "hour"], unique=False)
        batch_op.create_index("ix_prediction_logs_version_outlier", ["version_id", "outlier"], unique=False)
        batch_op.create_index("ix_prediction_logs_segment",
                              ["version_id", "hour", "codes", "pred_pos", "label_pos", "correct", "err", "anomalies",
                               "score_bin", "pred_bin", "labelled_at"], unique=False)

    hour_counts = ["n", "n_labelled", "correct", "tp", "fp", "tn", "fn"]
    anomaly_counts = ["n_missing", "n_below_min", "n_above_max", "n_unseen", "n_outliers", "n_anomalous"]
    op.create_table(
        "monitoring_hours",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        *[sa.Column(c, sa.Integer(), nullable=False) for c in hour_counts],
        *[sa.Column(c, sa.Float(), nullable=False) for c in ("sum_sq_err", "sum_abs_err", "sum_err")],
        *[sa.Column(c, sa.Integer(), nullable=False) for c in anomaly_counts],
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name=op.f("fk_monitoring_hours_version_id_model_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "hour", name=op.f("pk_monitoring_hours")),
    )
    op.create_table(
        "monitoring_bins",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("var", sa.SmallInteger(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("bin", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name=op.f("fk_monitoring_bins_version_id_model_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "var", "hour", "bin", name=op.f("pk_monitoring_bins")),
    )
    op.create_table(
        "monitoring_bin_days",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("var", sa.SmallInteger(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("bin", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name=op.f("fk_monitoring_bin_days_version_id_model_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "var", "hour", "bin", name=op.f("pk_monitoring_bin_days")),
    )
    op.create_table(
        "monitoring_state",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("n_logged", sa.BigInteger(), nullable=False),
        sa.Column("n_labelled", sa.BigInteger(), nullable=False),
        sa.Column("first_hour", sa.Integer(), nullable=True),
        sa.Column("last_hour", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name=op.f("fk_monitoring_state_version_id_model_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_monitoring_state")),
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=160), nullable=False),
        sa.Column("comparison", sa.String(length=2), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(length=8), nullable=False),
        sa.Column("min_samples", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_evaluated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_alert_rules_model_id_models"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_rules_model_id"), ["model_id"], unique=False)

    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("bucket_start", sa.DateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_alert_events_model_id_models"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rule_id"], ["alert_rules.id"], name=op.f("fk_alert_events_rule_id_alert_rules"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name=op.f("fk_alert_events_version_id_model_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
        sa.UniqueConstraint("rule_id", "version_id", "bucket_start", name="uq_alert_events_rule_version_bucket"),
    )
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.create_index("ix_alert_events_model_ack", ["model_id", "acknowledged_at"], unique=False)

    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("claim_token", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["alert_events.id"],
                                name=op.f("fk_alert_notifications_event_id_alert_events"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notifications")),
    )
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_notifications_event_id"), ["event_id"], unique=False)
        batch_op.create_index("ix_alert_notifications_status", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "monitoring_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=True),
        sa.Column("end", sa.DateTime(), nullable=True),
        sa.Column("chart", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("edited_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_monitoring_comments_model_id_models"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name=op.f("fk_monitoring_comments_version_id_model_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_comments")),
    )
    with op.batch_alter_table("monitoring_comments", schema=None) as batch_op:
        batch_op.create_index("ix_monitoring_comments_model_time", ["model_id", "created_at"], unique=False)

    op.create_table(
        "monitoring_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=False),
        sa.Column("period_end", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_monitoring_reports_model_id_models"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name=op.f("fk_monitoring_reports_version_id_model_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_reports")),
    )
    with op.batch_alter_table("monitoring_reports", schema=None) as batch_op:
        batch_op.create_index("ix_monitoring_reports_model_time", ["model_id", "created_at"], unique=False)


def downgrade() -> None:
    for table, indexes in (
        ("monitoring_reports", ["ix_monitoring_reports_model_time"]),
        ("monitoring_comments", ["ix_monitoring_comments_model_time"]),
        ("alert_notifications", ["ix_alert_notifications_status", "ix_alert_notifications_event_id"]),
        ("alert_events", ["ix_alert_events_model_ack"]),
        ("alert_rules", ["ix_alert_rules_model_id"]),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
    op.drop_table("monitoring_state")
    op.drop_table("monitoring_bin_days")
    op.drop_table("monitoring_bins")
    op.drop_table("monitoring_hours")
    with op.batch_alter_table("prediction_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_prediction_logs_segment")
        batch_op.drop_index("ix_prediction_logs_version_outlier")
        batch_op.drop_index("ix_prediction_logs_version_hour")
    op.drop_table("prediction_logs")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_api_tokens_model_id")
    op.drop_table("api_tokens")
    op.drop_table("api_rate_counters")
