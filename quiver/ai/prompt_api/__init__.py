"""Prompt APIs: a route's prompt template served as ``POST <path> {variables}``.

``template`` fills the template (values JSON-escaped); ``answers`` checks a request's
variables and the model's answer against their schemas; ``openapi`` writes the
endpoint's OpenAPI document; ``front`` answers the requests, calling the model
through the route's chat-completions front.
"""

from quiver.ai.prompt_api.front import PromptAPI

__all__ = ["PromptAPI"]
