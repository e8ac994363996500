"""`tuna serve`: an OpenAI-compatible HTTP server for a Tuna checkpoint (docs/serving.md)."""

from tuna.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str):
    # Lazy: `tuna --help` imports tuna.serve.cli, and should not pay for importing FastAPI.
    if name == "create_app":
        from tuna.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'tuna.serve' has no attribute {name!r}")
