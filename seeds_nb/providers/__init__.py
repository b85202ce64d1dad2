"""Provider clients: each only translates its protocol; the machinery is in ``seeds_nb.core``."""

from .openai import OpenAIClient

__all__ = ["OpenAIClient"]
