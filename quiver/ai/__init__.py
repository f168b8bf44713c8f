"""The AI gateway: one OpenAI- and Anthropic-compatible endpoint in front of many
model providers (docs/ai.md).

- :mod:`quiver.ai.target`: the ``ai`` target type an AI route compiles into; it
  dispatches each request to a front API (:mod:`quiver.ai.fronts`);
- :mod:`quiver.ai.gateway`: what the fronts of a route share, and each call's
  bookkeeping (``request.ctx["ai"]``, ``X-Quiver-Overhead-Ms``);
- :mod:`quiver.ai.router`: which deployment takes a call; cooldown, retries,
  fallbacks;
- :mod:`quiver.ai.upstream`: calling a provider through the worker's outbound client,
  its failures mapped to :mod:`quiver.ai.errors`;
- :mod:`quiver.ai.providers`: provider types as data (wire format, auth, paths);
- ``converters/``: pure translations between wire formats, named ``<from>_to_<to>``;
  the canonical format is an OpenAI chat-completions request or response as plain
  dicts;
- ``transports/``: incremental stream codecs (server-sent events, AWS event stream);
- :mod:`quiver.ai.sigv4`: the AWS Signature Version 4 signer Bedrock calls need;
- ``accounting/``: tokens, prices, budgets and limits reserved before a call and
  settled after.

It reaches providers only through ``PluginContext.outbound`` (``target://``), never
through the proxy's internals.
"""
