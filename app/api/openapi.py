"""The OpenAPI 3.1 document of the prediction-log API (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_document(server_url: str) -> dict[str, Any]:
    """Return the OpenAPI document with ``server_url`` as the API's base address."""
    name_param = {"name": "name", "in": "path", "required": True, "description": "The registered model's name.",
                  "schema": {"type": "string", "maxLength": 128}}
    common = {
        "401": _error("No token, or the token is unknown or revoked."),
        "403": _error("The token belongs to another model."),
        "404": _error("There is no model with this name."),
        "429": _error("Too many requests; see the Retry-After header."),
    }
    ingest = {
        "400": _error("The body is not a JSON object with the expected list."),
        "413": _error("The body is larger than the limit (GLASSBOX_API_MAX_BYTES, default 2 MiB)."),
        "415": _error("The body is not JSON."),
        "422": {"description": "At least one record is invalid; nothing was stored.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationErrors"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Glassbox prediction log",
            "version": "1.0.0",
            "description": (
                "Log what a deployed model predicted and, later, the ground truth, so Glassbox can monitor "
                "performance, drift and input anomalies. Authenticate with a token created by an administrator "
                "(`glassbox token create --model NAME` or Admin > Monitoring); a token is valid for one model. "
                "A batch is validated record by record: if any record is invalid the answer is 422 with every "
                "record's errors and nothing is stored; otherwise the batch is stored in one transaction. "
                "Record ids already stored for the model are reported under `duplicates` and not stored again, "
                "so a batch can be retried safely."),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": {
            "/models/{name}": {
                "get": {
                    "summary": "Describe a model: versions, features and classes",
                    "parameters": [name_param],
                    "responses": {"200": {"description": "The model's versions.",
                                          "content": {"application/json": {"schema": {"type": "object"}}}},
                                  **common},
                },
            },
            "/models/{name}/predictions": {
                "post": {
                    "summary": "Log a batch of predictions",
                    "parameters": [name_param],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/PredictionBatch"}}}},
                    "responses": {"200": {"description": "The batch was stored (duplicates skipped).",
                                          "content": {"application/json": {
                                              "schema": {"$ref": "#/components/schemas/Accepted"}}}},
                                  "503": _error("The model version's reference data is being computed; retry."),
                                  **common, **ingest},
                },
            },
            "/models/{name}/labels": {
                "post": {
                    "summary": "Attach ground truth to logged predictions",
                    "parameters": [name_param],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/LabelBatch"}}}},
                    "responses": {"200": {"description": "Labels stored; ids labelled before are duplicates.",
                                          "content": {"application/json": {
                                              "schema": {"$ref": "#/components/schemas/Accepted"}}}},
                                  **common, **ingest},
                },
            },
            "/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1 document."}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A token starting with gbx_."}},
            "schemas": {
                "PredictionBatch": {
                    "type": "object", "required": ["records"], "additionalProperties": False,
                    "properties": {"records": {"type": "array", "minItems": 1, "maxItems": 1000,
                                               "items": {"$ref": "#/components/schemas/Prediction"}}},
                },
                "Prediction": {
                    "type": "object", "required": ["id", "timestamp", "version", "features", "prediction"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": ["string", "integer"], "maxLength": 128,
                               "description": "Your id of the prediction, unique per model."},
                        "timestamp": {"type": "string", "format": "date-time",
                                      "description": "When the prediction was made (ISO 8601; no offset = UTC). "
                                                     "Not before 2000 nor more than a day ahead."},
                        "version": {"type": "integer", "minimum": 1, "description": "Registered version number."},
                        "features": {"type": "object", "description": (
                            "Every input feature of that version, no others; numbers for numeric features, text "
                            "(or numbers/booleans) for categorical ones, null when unknown.")},
                        "prediction": {"oneOf": [
                            {"type": "object", "required": ["label"], "additionalProperties": False,
                             "description": "Classifiers.",
                             "properties": {"label": {"description": "Predicted class."},
                                            "score": {"type": "number", "minimum": 0, "maximum": 1,
                                                      "description": "Binary: the positive class's probability."},
                                            "scores": {"type": "object", "additionalProperties": {
                                                "type": "number", "minimum": 0, "maximum": 1},
                                                "description": "Class -> probability."}}},
                            {"type": "object", "required": ["value"], "additionalProperties": False,
                             "description": "Regressors.", "properties": {"value": {"type": "number"}}},
                        ]},
                    },
                },
                "LabelBatch": {
                    "type": "object", "required": ["labels"], "additionalProperties": False,
                    "properties": {"labels": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {
                        "type": "object", "required": ["id", "label"], "additionalProperties": False,
                        "properties": {"id": {"type": ["string", "integer"]},
                                       "label": {"description": "True class, or true value for a regressor."}}}}},
                },
                "Accepted": {
                    "type": "object",
                    "properties": {"accepted": {"type": "integer"},
                                   "duplicates": {"type": "array", "items": {"type": "string"}},
                                   "alerts": {"type": "integer", "description": "Alert events this batch fired."}},
                },
                "ValidationErrors": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "errors": {"type": "array", "items": {
                        "type": "object", "properties": {
                            "index": {"type": "integer", "description": "Position in the batch (-1: the batch)."},
                            "id": {"type": ["string", "integer", "null"]},
                            "errors": {"type": "array", "items": {"type": "string"}}}}}},
                },
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
            },
        },
    }
