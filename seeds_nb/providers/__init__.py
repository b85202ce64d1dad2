"""Provider clients: each only translates its protocol; the machinery is in ``seeds_nb.core``.

Importing this package registers each provider's server-side Batch API adapter with the core, so
``client.submit_batch(...)`` works on ``OpenAIClient`` and ``AnthropicClient`` alike.
"""

from seeds_nb.core.batch_api import register_batch_api

from ._anthropic_batch import AnthropicBatchAPI
from ._batch_jobs import BatchJob
from ._batch_results import BatchCounts, BatchExpired, BatchNotReady
from ._openai_batch import OpenAIBatchAPI
from .anthropic import AnthropicClient
from .openai import OpenAIClient

register_batch_api("openai", OpenAIBatchAPI)
register_batch_api("anthropic", AnthropicBatchAPI)

__all__ = ["AnthropicClient", "BatchCounts", "BatchExpired", "BatchJob", "BatchNotReady", "OpenAIClient"]
