"""The MCP gateway: APIs published as Model Context Protocol tools, MCP servers fronted.

- ``contract``: what an MCP endpoint asks of whatever supplies its tools, resources
  and prompts (a :class:`~quiver.mcp.contract.Provider`), and the caller it names.
- ``openapi_tools``: the operations of an OpenAPI document as tools, a tool call as
  the HTTP request it stands for, and that request's answer as a tool result.
- ``upstream``: the gateway as the client of a remote MCP server (Streamable HTTP of
  either protocol revision, or the older HTTP+SSE transport: ``sse_transport``),
  with its wire helpers (``jsonrpc``, ``events``, ``fields``).
- ``aggregate``: several remote servers as one provider (prefixed names, fan-out),
  filtered by the target's ``access`` rules (``access``).

Like the AI gateway it sits beside the plugins: it uses the plugin contract and
never imports the proxy (docs/architecture.md).
"""
