"""The ``prompt`` option of an AI route: a prompt template served as a REST endpoint.

::

    routes:
      - name: summarize
        paths: ["/summarize"]
        ai:
          prompt:
            model: gpt-4o-mini
            template: "Summarise in {{words}} words: {{text}}"
            input_schema:
              type: object
              properties:
                text: {type: string, maxLength: 20000}
                words: {type: integer, minimum: 5, maximum: 200}
              required: [text, words]
            output_schema:
              type: object
              properties: {summary: {type: string}}
              required: [summary]

becomes ``POST /summarize {"text": ..., "words": 50}`` answering ``{"summary": ...}``
(docs/ai.md, "Prompt APIs").
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator, SchemaError
from pydantic import Field, field_validator, model_validator

from quiver.config.base import Strict

#: a ``{{name}}`` placeholder (spaces inside the braces allowed)
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def placeholders(text: str | None) -> list[str]:
    """The variable names ``text`` refers to, each once, in order."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text or "")))


def _check_schema(schema: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.path) or "(root)"
        raise ValueError(f"{what} is not a valid JSON Schema at {where}: {exc.message}") from None
    if schema.get("type") != "object":
        raise ValueError(f"{what} must describe a JSON object (type: object)")
    return schema


class AIPrompt(Strict):
    """A prompt template served as ``POST <path> {variables}``."""

    model: str = Field(min_length=1, description="The model that answers (a name in `ai.models`).")
    template: str = Field(
        min_length=1,
        description="The user message, with {{variables}} filled from the request: a string "
        "value goes in JSON-escaped (quotes, backslashes and line breaks escaped, no "
        "quotes added), any other value as JSON.",
    )
    system: str | None = Field(
        None, description="A system message sent first; may hold {{variables}} too."
    )
    input_schema: dict[str, Any] | None = Field(
        None,
        description="JSON Schema (2020-12) of the request body, an object of the variables; "
        "by default every variable of the template is a required string and nothing else "
        "is allowed.",
    )
    output_schema: dict[str, Any] | None = Field(
        None,
        description="JSON Schema of the answer, an object: asked of the model as "
        "`response_format: json_schema` and checked after (502 when it does not match); "
        'without it the answer is `{"output": "<text>"}`.',
    )
    temperature: float | None = Field(
        None, ge=0, le=2, description="Sampling temperature sent to the model."
    )
    max_tokens: int | None = Field(None, gt=0, description="Most tokens the answer may take.")
    summary: str | None = Field(
        None, description="What the endpoint does, in a few words, for its OpenAPI document."
    )
    description: str | None = Field(
        None, description="More about the endpoint, for its OpenAPI document."
    )

    @field_validator("input_schema")
    @classmethod
    def _input_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if schema is None else _check_schema(schema, "input_schema")

    @field_validator("output_schema")
    @classmethod
    def _output_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if schema is None else _check_schema(schema, "output_schema")

    @model_validator(mode="after")
    def _variables_declared(self) -> AIPrompt:
        if self.input_schema is None:
            return self
        properties = self.input_schema.get("properties")
        declared = properties if isinstance(properties, dict) else {}
        for name in placeholders(self.template) + placeholders(self.system):
            if name not in declared:
                raise ValueError(
                    f"the template uses {{{{{name}}}}}, not in input_schema.properties"
                )
        return self

    def variables_schema(self) -> dict[str, Any]:
        """The schema request bodies are checked against (``input_schema`` or the
        default one)."""
        if self.input_schema is not None:
            return self.input_schema
        names = placeholders(self.template) + [
            name for name in placeholders(self.system) if name not in placeholders(self.template)
        ]
        return {
            "type": "object",
            "properties": {name: {"type": "string"} for name in names},
            "required": names,
            "additionalProperties": False,
        }
