"""Answering a prompt API's requests: the variables checked and put into the template,
the model asked through the route's chat-completions front (so routing, fallbacks,
accounting and the provider converters are those of any chat call), its answer
checked and sent as JSON, or as server-sent events when the client asks for them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, cast

import orjson
from jsonschema import Draft202012Validator

from quiver.ai.errors import AIError
from quiver.ai.fronts.chat import chat_completions
from quiver.ai.gateway import JSON, NO_CACHE, SSE, Call, Gateway
from quiver.ai.prompt_api.answers import (
    InvalidModelOutput,
    ModelCallFailed,
    read_output,
    read_variables,
)
from quiver.ai.prompt_api.openapi import document
from quiver.ai.prompt_api.template import Template
from quiver.ai.transports.sse import SSEParser, event
from quiver.config.ai_prompt import AIPrompt
from quiver.errors import MethodNotAllowed
from quiver.plugins.base import PluginRequest
from quiver.plugins.responder import Response

_OPENAPI = b"/openapi.json"
_DONE = "[DONE]"


class _Rewritten:
    """The client's request carrying the chat-completions body the template made."""

    def __init__(self, request: PluginRequest, body: bytes) -> None:
        self._request = request
        self.body = body

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def wants_stream(accept: bytes | None) -> bool:
    return accept is not None and b"text/event-stream" in accept.lower()


class PromptAPI:
    """The prompt API of one route, built once per config."""

    def __init__(self, prompt: AIPrompt, route: str, gateway: Gateway) -> None:
        self.prompt = prompt
        self.route = route
        self.gateway = gateway
        schema = prompt.variables_schema()
        self.inputs = Draft202012Validator(schema)
        self.outputs = Draft202012Validator(prompt.output_schema) if prompt.output_schema else None
        self.template = Template(prompt.template, schema)
        self.system = Template(prompt.system, schema) if prompt.system else None
        self.documents: dict[bytes, bytes] = {}  # by the path they describe

    def handle(self, request: PluginRequest) -> Response | Awaitable[Response]:
        path = request.raw_path.partition(b"?")[0]
        if path.endswith(_OPENAPI):
            if request.method not in (b"GET", b"HEAD"):
                raise MethodNotAllowed("the OpenAPI document is read with GET", headers=_ALLOW_GET)
            return Response(200, [JSON], self._document(path[: -len(_OPENAPI)] or b"/"))
        if request.method != b"POST":
            raise MethodNotAllowed("a prompt API is called with POST", headers=_ALLOW_POST)
        return self._answer(request)

    def _document(self, path: bytes) -> bytes:
        found = self.documents.get(path)
        if found is None:
            doc = document(self.prompt, self.route, path.decode("latin-1"))
            found = orjson.dumps(doc)
            if len(self.documents) < 64:  # (paths under the route are many: keep a few)
                self.documents[path] = found
        return found

    def chat(self, variables: dict[str, Any], stream: bool) -> dict[str, Any]:
        """The chat-completions request for ``variables``."""
        prompt = self.prompt
        messages = []
        if self.system is not None:
            messages.append({"role": "system", "content": self.system.fill(variables)})
        messages.append({"role": "user", "content": self.template.fill(variables)})
        chat: dict[str, Any] = {"model": prompt.model, "messages": messages}
        if prompt.temperature is not None:
            chat["temperature"] = prompt.temperature
        if prompt.max_tokens is not None:
            chat["max_tokens"] = prompt.max_tokens
        if prompt.output_schema is not None:
            chat["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": prompt.output_schema},
            }
        if stream:
            chat["stream"] = True
        return chat

    async def _answer(self, request: PluginRequest) -> Response:
        variables = read_variables(request.body, self.inputs)
        stream = wants_stream(request.get(b"accept"))
        body = orjson.dumps(self.chat(variables, stream))
        inner = cast(PluginRequest, _Rewritten(request, body))
        call = Call(request, self.prompt.model)
        try:
            response = await chat_completions(self.gateway, inner, call)
        except AIError as exc:
            raise ModelCallFailed(exc.status, exc.message, exc.retry_after) from exc
        overhead = [field for field in response.headers if field[0] != b"Content-Type"]
        if stream and not isinstance(response.body, bytes):
            return Response(200, [SSE, NO_CACHE, *overhead], self._events(response.body))
        assert isinstance(response.body, bytes)
        output = self._output(_answer_text(response.body))
        return Response(200, [JSON, *overhead], orjson.dumps(output))

    def _output(self, text: str) -> Any:
        if self.outputs is None:
            return {"output": text}
        return read_output(text, self.outputs)

    async def _events(self, pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The chat stream as the prompt API's events (see ``openapi._STREAM``)."""
        parser = SSEParser()
        text: list[str] = []
        try:
            async for piece in pieces:
                out = []
                for found in parser.feed(piece):
                    delta = _delta(found.data)
                    if delta:
                        text.append(delta)
                        out.append(event(orjson.dumps({"delta": delta})))
                if out:
                    yield b"".join(out)
        finally:
            closing = getattr(pieces, "aclose", None)
            if closing is not None:
                await closing()
        try:
            output = self._output("".join(text))
        except InvalidModelOutput as exc:
            problem = {
                "type": "urn:quiver:problem:" + exc.slug,
                "title": exc.title,
                "status": exc.status_code,
                "detail": exc.detail,
                **exc.extensions,
            }
            yield event(orjson.dumps(problem), b"error")
            return
        yield event(orjson.dumps(output), b"done")


_ALLOW_GET = ((b"Allow", b"GET, HEAD"),)
_ALLOW_POST = ((b"Allow", b"POST"),)


def _answer_text(raw: bytes) -> str:
    """The text of the first choice of a chat completion."""
    try:
        completion = orjson.loads(raw)
        content = completion["choices"][0]["message"].get("content")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        raise InvalidModelOutput("the model's answer could not be read") from None
    return content if isinstance(content, str) else ""


def _delta(data: str) -> str:
    """The text a chat-completion chunk adds to the first choice ("" for none)."""
    if data == _DONE:
        return ""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return ""
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not isinstance(choices, list):
        return ""
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            return content if isinstance(content, str) else ""
    return ""
