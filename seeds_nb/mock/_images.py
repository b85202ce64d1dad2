"""Images as the mock server receives them, in each protocol: checked as the real APIs check them, and
turned into one OpenAI-shaped ``image_url`` part that the mock model answers.

What the real APIs refuse, the mock refuses with a 400 (a data URL that is not base64, bytes that are
not an image, a declared media type the bytes contradict, an image outside a user turn), so a test
over HTTP proves that what a client sent would be accepted. The mock cannot fetch a URL (it runs
offline): an ``http(s)`` image is taken as it is.

The answer names every image of the last user turn with its media type, size and the start of its
SHA-256 (``Mock answer to 'Describe' [image/png 68 B sha256:1a2b3c4d5e6f]: ...``), so a test sees what
arrived, and two different images get two different answers. The same image gets the same answer in
every protocol (a base64 block or ``inlineData`` is rebuilt into the data URL the OpenAI dialect carries).
The mock checks magic numbers with its own small table: it is a server and shares no code with the client.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from ._errors import RequestError

__all__ = ["MEDIA_TYPES", "MOCK_IMAGE_TOKENS", "anthropic_part", "check_openai_part", "describe", "gemini_part"]

MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/heic", "image/heif")
MOCK_IMAGE_TOKENS = 258
"""Input tokens the mock bills per image (Gemini's figure for an image up to 384 px; a constant keeps
answers deterministic without decoding pixels)."""
_DATA_URL = re.compile(r"data:(?P<mime>[\w/+.-]+);base64,(?P<data>.*)", re.S)


def _magic(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heif"):
        return "image/heic" if data[8:12] in (b"heic", b"heix") else "image/heif"
    return None


def _decoded(mime: Any, data: Any, where: str) -> bytes:
    """The bytes of an inline image, or ``RequestError`` as the real APIs word it."""
    if mime not in MEDIA_TYPES:
        raise RequestError(f"{where}: media type {mime!r} is not supported; use one of {', '.join(MEDIA_TYPES)}",
                           where)
    if not isinstance(data, str):
        raise RequestError(f"{where}: image data must be a base64 string", where)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"{where}: the image data is not valid base64", where) from None
    found = _magic(raw)
    if found is None:
        raise RequestError(f"{where}: could not process image: the data is not a valid image", where)
    if found != mime and {found, mime} != {"image/heic", "image/heif"}:
        raise RequestError(f"{where}: image does not match the provided media type {mime} (its bytes are {found})",
                           where)
    return raw


def describe(url: str) -> str:
    """``[image/png 68 B sha256:1a2b3c4d5e6f]`` for a data URL the mock checked, ``[image <url>]`` for a URL."""
    match = _DATA_URL.fullmatch(url)
    if match is None:
        return f"[image {url}]"
    raw = base64.b64decode(match["data"])
    return f"[{match['mime']} {len(raw)} B sha256:{hashlib.sha256(raw).hexdigest()[:12]}]"


def check_openai_part(part: dict[str, Any], role: Any, where: str) -> None:
    """Chat Completions' ``image_url`` part: an http(s) URL or a base64 data URL, in a user message."""
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, dict) else None
    if not isinstance(url, str):
        raise RequestError(f"Missing required parameter: '{where}.image_url.url'.", f"{where}.image_url")
    if role != "user":
        raise RequestError(f"Image URLs are only allowed for messages with role 'user', but this message with role "
                           f"{role!r} contains an image URL.", where)
    if isinstance(value, dict) and value.get("detail") not in (None, "auto", "low", "high"):
        raise RequestError(f"Invalid value for '{where}.image_url.detail': {value.get('detail')!r}.", where)
    if url.startswith(("http://", "https://")):
        return
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise RequestError(f"Invalid image URL: '{where}.image_url.url'. Expected a base64-encoded data URL with an "
                           "image MIME type (e.g. 'data:image/png;base64,...'), but got a value that is not.", where)
    _decoded(match["mime"], match["data"], where)


def anthropic_part(block: dict[str, Any], role: Any, where: str) -> dict[str, Any]:
    """Anthropic's ``image`` block, checked, as the OpenAI part the mock model reads."""
    source = block.get("source")
    if not isinstance(source, dict):
        raise RequestError(f"{where}.source: Field required", where)
    if role != "user":
        raise RequestError(f"{where}: image content blocks are only allowed in user turns", where)
    if source.get("type") == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise RequestError(f"{where}.source.url: an http(s) URL is required", where)
        return {"type": "image_url", "image_url": {"url": url}}
    if source.get("type") != "base64":
        raise RequestError(f"{where}.source.type: Input should be 'base64' or 'url'", where)
    _decoded(source.get("media_type"), source.get("data"), f"{where}.source.base64")
    return {"type": "image_url", "image_url": {"url": f"data:{source['media_type']};base64,{source['data']}"}}


def gemini_part(part: dict[str, Any], role: Any, where: str) -> dict[str, Any] | None:
    """Gemini's ``inlineData`` / ``fileData`` part (camelCase or snake_case), checked, as the OpenAI part
    the mock model reads; None for a part that holds no image."""
    inline = part.get("inlineData", part.get("inline_data"))
    file_data = part.get("fileData", part.get("file_data"))
    if inline is None and file_data is None:
        return None
    if role not in (None, "user"):
        raise RequestError(f"* GenerateContentRequest.{where}: images are only accepted in user turns", where)
    if inline is not None:
        if not isinstance(inline, dict):
            raise RequestError(f"* GenerateContentRequest.{where}.inline_data: must be an object", where)
        mime = inline.get("mimeType", inline.get("mime_type"))
        _decoded(mime, inline.get("data"), f"* GenerateContentRequest.{where}.inline_data")
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{inline['data']}"}}
    uri = file_data.get("fileUri", file_data.get("file_uri")) if isinstance(file_data, dict) else None
    if not isinstance(uri, str) or not uri:
        raise RequestError(f"* GenerateContentRequest.{where}.file_data.file_uri: a file URI is required", where)
    return {"type": "image_url", "image_url": {"url": uri}}
