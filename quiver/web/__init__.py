"""The web pages: the developer portal and the operator console."""
