"""``OpenRouterClient``: OpenRouter's OpenAI-compatible API, one key for many vendors' models.

Only translation lives here (``OpenRouterCodec``, an ``OpenAICodec``): the attribution headers, the
request for OpenRouter's usage accounting, reading the cost it reports, and where a vendor-prefixed
model id (``anthropic/claude-sonnet-4.5``) is priced and estimated. Retries, limits, cache and
tracking are the core's pipeline.

Why three sources of cost, in this order: what OpenRouter billed (``usage.cost``) is the cost; without
it, OpenRouter's own price list in genai-prices; without that, the vendor's list under the bare id.
Carbon has one source: EcoLogits knows the vendor's model, so the prefix picks its provider.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from seeds_nb.core.client import BaseClient, check_base_url
from seeds_nb.core.exceptions import ConfigurationError
from seeds_nb.core.secrets import Secret, SecretHeaders
from seeds_nb.core.tracking import Targets
from seeds_nb.core.types import Message, Usage

from .openai import OpenAICodec

__all__ = ["OPENROUTER_BASE_URL", "OpenRouterClient", "OpenRouterCodec"]

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
#: OpenRouter's vendor prefix -> genai-prices' provider id (others are tried as given)
_PRICE_VENDOR = {"mistralai": "mistral", "meta-llama": "meta"}
#: OpenRouter's vendor prefix -> EcoLogits' provider (a vendor not here has no carbon estimate)
_IMPACTS_VENDOR = {"openai": "openai", "anthropic": "anthropic", "google": "google_genai", "mistralai": "mistralai",
                   "cohere": "cohere"}


def split_model(model: str) -> tuple[str | None, str]:
    """``"anthropic/claude-sonnet-4.5:beta"`` -> ``("anthropic", "claude-sonnet-4.5")``: the vendor and
    its own model name, without OpenRouter's variant suffix (``:free``, ``:nitro``...)."""
    vendor, slash, name = model.partition("/")
    if not slash:
        return None, model.split(":", 1)[0]
    return vendor, name.split(":", 1)[0]


class OpenRouterCodec(OpenAICodec):
    """Chat Completions as OpenRouter speaks them: attribution headers, usage accounting, vendor-prefixed ids."""

    provider = "openrouter"
    key_env = "OPENROUTER_API_KEY"
    known_params = OpenAICodec.known_params | frozenset({
        "top_k", "min_p", "top_a", "repetition_penalty", "provider", "models", "route", "transforms", "reasoning",
        "tools", "tool_choice",
    })

    def __init__(self, *, model: str, base_url: str, site_url: str | None = None, app_name: str | None = None,
                 usage_accounting: bool = True) -> None:
        super().__init__(model=model, base_url=base_url)
        self.site_url = site_url
        self.app_name = app_name
        self.usage_accounting = usage_accounting

    def auth_headers(self, secret: Secret) -> SecretHeaders:
        extra = {}
        if self.site_url:
            extra["HTTP-Referer"] = self.site_url  # OpenRouter's app attribution (its rankings)
        if self.app_name:
            extra["X-Title"] = self.app_name
        return super().auth_headers(secret).with_extra(extra)

    def build_request(self, messages: Sequence[Message], params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        path, body = super().build_request(messages, params)
        if self.usage_accounting and "usage" not in body:
            # Asks for the billed cost in the answer (OpenRouter now always sends it; older deployments
            # only when asked). It changes no answer, so it is not part of the cache key.
            body["usage"] = {"include": True}
        return path, body

    def parse_usage(self, usage_json: Any) -> Usage:
        usage = super().parse_usage(usage_json)
        cost = usage_json.get("cost") if isinstance(usage_json, dict) else None
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            usage.reported_cost_usd = float(cost)  # OpenRouter credits are US dollars
        return usage

    def tracking_targets(self, model: str) -> Targets | None:
        vendor, name = split_model(model)
        prices = [("openrouter", model)]
        if model.split(":", 1)[0] != model:
            prices.append(("openrouter", model.split(":", 1)[0]))
        if vendor is not None:
            prices.append((_PRICE_VENDOR.get(vendor, vendor), name))
        ecologits = _IMPACTS_VENDOR.get(vendor or "")
        impacts: list[tuple[str, str]] = []
        if ecologits is not None:
            # EcoLogits names Claude models with dashes where OpenRouter has dots (claude-sonnet-4.5)
            impacts = [(ecologits, n) for n in dict.fromkeys((name, name.replace(".", "-")))]
        return Targets(tuple(prices), tuple(impacts))


class OpenRouterClient(BaseClient):
    """OpenRouter client: any vendor's model by its OpenRouter id (``openai/gpt-4.1``,
    ``anthropic/claude-sonnet-4.5``, ``meta-llama/llama-3.1-70b-instruct``).

    Args:
        model: an OpenRouter model id, ``vendor/model``.
        api_key: defaults to ``OPENROUTER_API_KEY``; optional for another ``base_url`` (the seeds_nb mock).
        base_url: defaults to ``OPENROUTER_BASE_URL``, then ``https://openrouter.ai/api/v1``.
        site_url / app_name: sent as ``HTTP-Referer`` / ``X-Title`` (OpenRouter's app attribution).
        usage_accounting: ask OpenRouter for the billed cost (``usage.cost``), which then is the answer's
            cost (default True). Without it, cost comes from price tables (OpenRouter's, then the vendor's).
        fetch_cost_data: the original library's name for ``usage_accounting`` (it fetched the cost with a
            second request per answer; the cost now comes in the answer itself).
        cache_dir, timeout, generation defaults (``temperature=``...) and the other keyword arguments: as
            for ``OpenAIClient``. OpenRouter has no Batch API: ``submit_batch`` is refused.
    """

    provider = "openrouter"
    codec_class = OpenRouterCodec
    default_model = "openai/gpt-4.1-mini"
    api_key_env = (OpenRouterCodec.key_env,)
    base_url_env = ("OPENROUTER_BASE_URL",)
    default_base_url = OPENROUTER_BASE_URL

    def __init__(self, model: str, api_key: str | None = None, base_url: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, timeout: float = 60.0, *,
                 site_url: str | None = None, app_name: str | None = None, usage_accounting: bool = True,
                 fetch_cost_data: bool | None = None, **kwargs: Any) -> None:
        key, url = self.resolve_credentials(api_key, base_url)
        del api_key  # only the Secret holds it from here (a traceback shows locals)
        if not key and isinstance(url, str) and url.rstrip("/") == OPENROUTER_BASE_URL:
            raise ConfigurationError(
                f"no OpenRouter API key: set the {self.api_key_env[0]} environment variable or pass api_key=... "
                "(keys: https://openrouter.ai/keys); to try seeds_nb without a key, use the mock server: "
                "`server = seeds_nb.MockServer().start()` then OpenRouterClient(model, base_url=server.url)")
        for name, value in (("site_url", site_url), ("app_name", app_name)):
            if value is not None and (not isinstance(value, str) or not value.isprintable()):
                raise ConfigurationError(f"{name} must be a one-line string (it is sent as a header); got {value!r}")
        if fetch_cost_data is not None:
            usage_accounting = fetch_cost_data
        if not isinstance(usage_accounting, bool):
            raise ConfigurationError(f"usage_accounting must be True or False; got {usage_accounting!r}")
        self.site_url, self.app_name = site_url, app_name
        codec = OpenRouterCodec(model=model, base_url=check_base_url(url), site_url=site_url, app_name=app_name,
                                usage_accounting=usage_accounting) if isinstance(model, str) else None
        super().__init__(model, api_key=key, base_url=url, cache_dir=cache_dir, timeout=timeout, codec=codec,
                         **kwargs)
