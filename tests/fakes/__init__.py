"""Test doubles for outside services (an OpenAI-compatible HTTP server on 127.0.0.1)."""
