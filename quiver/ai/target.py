"""The ``ai`` target type: an AI route answered inside the worker.

Each route with ``ai: {...}`` compiles into a target of this type (see
:func:`quiver.config.ai.expand`); requests under the route's paths are dispatched by
the end of their path to a front API:

=============================  ======  ==========================================
path (after the route prefix)  method  front
=============================  ======  ==========================================
``/chat/completions``          POST    OpenAI chat completions (:mod:`.fronts.chat`)
``/embeddings``                POST    OpenAI embeddings
``/models``, ``/models/{id}``  GET     OpenAI models
``/messages``                  POST    Anthropic messages (:mod:`.fronts.messages`)
``/messages/count_tokens``     POST    Anthropic token counting
``/responses``                 POST    OpenAI responses (:mod:`.fronts.responses`)
``/responses/{id}``            GET     a stored response; DELETE forgets it
=============================  ======  ==========================================

Whatever goes wrong is answered in the shape of the front's API (:mod:`.errors`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import Field

from quiver.ai.errors import AIError, InvalidRequest, Shape
from quiver.ai.fronts.chat import chat_completions
from quiver.ai.fronts.embeddings import embeddings
from quiver.ai.fronts.messages import count_tokens, messages
from quiver.ai.fronts.models import list_models, retrieve_model
from quiver.ai.fronts.responses import delete, responses, retrieve
from quiver.ai.gateway import Call, Gateway, error_response
from quiver.ai.prompt_api import PromptAPI
from quiver.config.ai import AI_TARGET_TYPE, AIConfig
from quiver.config.ai_prompt import AIPrompt
from quiver.errors import HTTPError
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.responder import Response, TargetOptions, TargetType

Front = Callable[[Gateway, PluginRequest, Call], Awaitable[Response]]

#: POST fronts by the end of the path, the shape of their errors, and the operation
#: the records name
_FRONTS: tuple[tuple[bytes, Front, Shape, str], ...] = (
    (b"/chat/completions", chat_completions, "openai", "chat"),
    (b"/messages/count_tokens", count_tokens, "anthropic", "count_tokens"),
    (b"/messages", messages, "anthropic", "messages"),
    (b"/embeddings", embeddings, "openai", "embeddings"),
    (b"/responses", responses, "openai", "responses"),
)


class AITargetOptions(TargetOptions):
    route: str = Field(description="The AI route this target answers.")
    models: list[str] | None = Field(None, description="The models it serves; all when unset.")
    ai: AIConfig = Field(description="The `ai` section of the config.")
    prompt: AIPrompt | None = Field(None, description="The route's prompt API, if it is one.")


class AITarget(TargetType[AITargetOptions]):
    """Answers the OpenAI- and Anthropic-compatible APIs of an AI route."""

    name = AI_TARGET_TYPE
    Options = AITargetOptions

    def __init__(self, options: AITargetOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        self.gateway = Gateway(options.ai, options.models, context)
        self.prompt_api = (
            PromptAPI(options.prompt, options.route, self.gateway) if options.prompt else None
        )

    def handle(self, request: PluginRequest) -> Response | Awaitable[Response]:
        if self.prompt_api is not None:
            return self.prompt_api.handle(request)
        path = request.raw_path.partition(b"?")[0].rstrip(b"/")
        method = request.method
        if method == b"POST":
            for suffix, front, shape, operation in _FRONTS:
                if path.endswith(suffix):
                    return self._answer(front, shape, operation, request)
        elif method == b"GET":
            try:
                if path.endswith(b"/models"):
                    return list_models(self.gateway)
                head, _, name = path.rpartition(b"/")
                if head.endswith(b"/models") and name:
                    return retrieve_model(self.gateway, name.decode("latin-1"))
            except AIError as exc:
                return error_response(exc, "openai")
            stored = self._stored_response(path)
            if stored is not None:
                return self._answer_stored(retrieve, stored)
        elif method == b"DELETE":
            stored = self._stored_response(path)
            if stored is not None:
                return self._answer_stored(delete, stored)
        error = InvalidRequest(
            f"Unknown request URL: {method.decode('latin-1')} {path.decode('latin-1')}",
            status=404,
            code="unknown_url",
        )
        return error_response(error, "anthropic" if b"/messages" in path else "openai")

    @staticmethod
    def _stored_response(path: bytes) -> str | None:
        """The id of ``.../responses/{id}``, if the path is one."""
        head, _, name = path.rpartition(b"/")
        if head.endswith(b"/responses") and name:
            return name.decode("latin-1")
        return None

    async def _answer_stored(
        self, action: Callable[[Gateway, str], Awaitable[Response]], identifier: str
    ) -> Response:
        try:
            return await action(self.gateway, identifier)
        except AIError as exc:
            return error_response(exc, "openai")

    async def _answer(
        self, front: Front, shape: Shape, operation: str, request: PluginRequest
    ) -> Response:
        call = Call(request, "")
        call.info["operation"] = operation
        try:
            return await front(self.gateway, request, call)
        except (AIError, HTTPError) as exc:  # (a budget's or a limit's refusal too)
            return error_response(exc, shape, call)
