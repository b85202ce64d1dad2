"""An embedded mock LLM server over real HTTP on 127.0.0.1: OpenAI Chat Completions, Anthropic Messages,
Gemini ``generateContent``, a self-hosted server reporting measured carbon (``server.selfhosted_url``), and
the providers' Batch APIs (OpenAI files + batches, Anthropic message batches, Gemini batches) on a
compressed clock.

It exists so tests, notebooks, docs and benchmarks can exercise real clients (the ``openai`` SDK, httpx,
aiohttp) without an API key, network access or cost: answers are deterministic functions of the request,
and failures (429/500, slow responses, dropped connections, malformed JSON, rate limits) can be injected
deterministically per request with :class:`Fault`.

    with MockServer() as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test")
        claude = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-test")
"""

from ._faults import Fault
from ._model import RequestError, mock_completion, mock_cost_usd, request_identity
from ._selfhosted import mock_carbon_trace
from ._server import MODEL_IDS, MockServer

__all__ = ["MODEL_IDS", "Fault", "MockServer", "RequestError", "mock_carbon_trace", "mock_completion",
           "mock_cost_usd", "request_identity"]
