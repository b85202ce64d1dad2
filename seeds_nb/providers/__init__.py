"""Provider clients: each only translates its protocol (a ``Codec``); the machinery is in ``seeds_nb.core``.

Each client names its server-side Batch API adapter (``batch_api_class``), so ``client.submit_batch``
works on ``OpenAIClient``, ``AnthropicClient`` and ``GoogleClient`` alike without any registration at import.
"""

from ._batch_jobs import BatchJob
from ._batch_results import BatchCounts, BatchExpired, BatchNotReady
from .anthropic import AnthropicClient, AnthropicCodec
from .google import GoogleClient, GoogleCodec
from .openai import OpenAIClient, OpenAICodec
from .openrouter import OpenRouterClient, OpenRouterCodec
from .selfhosted import ModelGardenClient, SelfHostedClient, SelfHostedCodec

__all__ = ["AnthropicClient", "AnthropicCodec", "BatchCounts", "BatchExpired", "BatchJob", "BatchNotReady",
           "GoogleClient", "GoogleCodec", "ModelGardenClient", "OpenAIClient", "OpenAICodec", "OpenRouterClient",
           "OpenRouterCodec", "SelfHostedClient", "SelfHostedCodec"]
