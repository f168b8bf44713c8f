"""HTTP rules that both the proxy and the plugins apply: path normalization and the
request fields the gateway manages itself.  Pure functions and constants only."""
