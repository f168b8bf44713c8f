"""The AI gateway: one OpenAI- and Anthropic-compatible endpoint in front of many
model providers (see the modules of this package)."""
