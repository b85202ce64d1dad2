"""Images in prompts: every accepted source turned, once, into one typed ``ImagePart``.

A message's content parts may hold an image as the original seeds-clients library took it,
``{"type": "image", "source": ...}``, or in OpenAI's form, ``{"type": "image_url", "image_url": {"url": ...}}``.
The source is bytes, a file path (``str`` or ``pathlib.Path``), an open binary file, an ``http(s)`` URL,
a ``data:`` URL, an Anthropic-style ``{"type": "base64" | "url", ...}`` dict, or a PIL image (when
pillow is installed; it is never required). ``Message`` normalises each such part here into
``{"type": "image", "source": ImagePart}``; providers only translate an ``ImagePart`` to their own
wire form (a data URL, a base64 block, ``inlineData``...).

Why here and once: the MIME type is sniffed from the bytes' magic numbers (``filetype``), never assumed,
so a JPEG is not sent labelled PNG; the cache key is the image's *content* (a SHA-256 of its bytes; a
URL by its text), so two different images never share an answer and the same image from a path or
from bytes does; and the repr is a short label (``[image/png 12 KB]``), so megabytes of base64 never
reach a repr, a log, a traceback or the grid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filetype

from .exceptions import PromptError

__all__ = ["IMAGE_MIME_TYPES", "IMAGE_TOKENS", "ImagePart", "image_part", "json_default", "normalize_parts",
           "sniff_mime"]

IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/heic", "image/heif")
"""What an image may be: the formats the chat APIs take (PNG, JPEG, GIF and WebP everywhere; HEIC/HEIF
on Gemini). Anything else is refused before sending, with its sniffed type named."""

IMAGE_TOKENS = 1_000
"""Input tokens one image is counted as before sending (a rate gate's or an estimate's allowance, not a
bill): providers charge by pixels (OpenAI 85-1,105 at the default detail, Anthropic up to ~1,600,
Gemini 258-1,290), and the base64 text is not what they count."""

_PIL_FORMATS = frozenset({"PNG", "JPEG", "GIF", "WEBP"})
_DATA_URL = re.compile(r"data:(?P<mime>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.S)
_SOURCE_KINDS = ("bytes, a file path (str or pathlib.Path), an open binary file, an http(s) URL, a data: URL, "
                 "{'type': 'base64', 'media_type': ..., 'data': ...}, {'type': 'url', 'url': ...}, or a PIL image")
_DETAILS = ("auto", "low", "high")


@dataclass(frozen=True, slots=True, eq=False)
class ImagePart:
    """One image of a prompt: its bytes and sniffed MIME type, or a URL the provider fetches itself.

    ``detail`` is OpenAI's resolution hint (``"low"``, ``"high"``, ``"auto"``), sent where a provider
    has one. Equal images compare equal whatever source they came from.
    """

    data: bytes | None = field(default=None, repr=False)
    mime: str | None = None
    url: str | None = None
    detail: str | None = None
    sha256: str | None = field(default=None, init=False)
    """The hex SHA-256 of the bytes (None for a URL): what names the image in the cache key."""

    def __post_init__(self) -> None:
        if (self.data is None) == (self.url is None):
            raise ValueError("an ImagePart holds either data (with its mime) or a url")
        if self.data is not None:  # hashed once: every cache key and fingerprint of the prompt reads it
            object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    def base64(self) -> str:
        """The bytes as base64 text (what every provider's inline form carries)."""
        if self.data is None:
            raise ValueError("a URL image has no bytes to encode; send its url")
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        """``data:<mime>;base64,...`` for an inline image, the URL itself otherwise (OpenAI's ``image_url``)."""
        if self.url is not None:
            return self.url
        return f"data:{self.mime};base64,{self.base64()}"

    def identity(self) -> dict[str, Any]:
        """What the cache key holds for this image: its content hash (or URL), never the bytes."""
        ident: dict[str, Any] = {"image_url": self.url} if self.url is not None else {
            "image_sha256": self.sha256, "mime": self.mime}
        if self.detail is not None:
            ident["detail"] = self.detail
        return ident

    def label(self) -> str:
        """A short description for displays: ``[image/png 12 KB]`` or ``[image https://...]``."""
        if self.url is not None:
            url = self.url if len(self.url) <= 80 else self.url[:77] + "..."
            return f"[image {url}]"
        return f"[{self.mime} {_size(len(self.data or b''))}]"

    def __repr__(self) -> str:
        return f"ImagePart({self.label()[1:-1]})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImagePart):
            return NotImplemented
        return (self.url, self.sha256, self.mime, self.detail) == (other.url, other.sha256, other.mime, other.detail)

    def __hash__(self) -> int:
        return hash((self.url, self.sha256, self.detail))


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def sniff_mime(data: bytes, *, what: str = "the image") -> str:
    """The MIME type of image bytes, from their magic numbers (the ``filetype`` library's matchers).

    Raises ``PromptError`` for empty bytes, bytes no signature matches, and a type no chat API takes
    (naming the type it looks like: a PDF, a BMP...).
    """
    accepted = ", ".join(IMAGE_MIME_TYPES)
    if not data:
        raise PromptError(f"{what}: empty (0 bytes); pass the bytes of an image ({accepted})")
    # filetype rather than puremagic: ~20 us a call against ~2 ms (measured on a 512 px JPEG), which a
    # batch of 10,000 images would spend on the event loop; both read the same signatures for images.
    kind = filetype.guess(data[:8192])  # it reads no further itself
    mime = kind.mime if kind is not None else None
    if mime in IMAGE_MIME_TYPES:
        return mime
    looks = mime
    kind = f"looks like {looks}" if looks else f"not a recognised file type (it starts {data[:8]!r})"
    raise PromptError(f"{what}: {kind}, not an image a chat API takes; send one of {accepted} "
                      "(convert it first, e.g. with pillow)")


def image_part(source: Any, *, detail: str | None = None) -> ImagePart:
    """An ``ImagePart`` from any accepted source (see the module docstring); a ``PromptError`` names
    what is wrong (a missing file by its path, an unknown type, a malformed data URL) and what is accepted."""
    if detail is not None and detail not in _DETAILS:
        raise PromptError(f"image detail must be one of {', '.join(_DETAILS)}; got {detail!r}")
    if isinstance(source, ImagePart):
        return source if detail is None or detail == source.detail else ImagePart(
            source.data, source.mime, source.url, detail)
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return ImagePart(data, sniff_mime(data, what="the image bytes"), detail=detail)
    if isinstance(source, str):
        text = source.strip()
        if text.startswith(("http://", "https://")):
            return ImagePart(url=text, detail=detail)
        if text[:5].lower() == "data:":
            return _from_data_url(text, detail)
        return _from_path(Path(source), detail)
    if isinstance(source, os.PathLike):
        return _from_path(Path(os.fspath(source)), detail)
    if isinstance(source, dict):
        return _from_block(source, detail)
    pil = sys.modules.get("PIL.Image")  # a PIL image exists only if pillow was imported: never import it here
    if pil is not None and isinstance(source, pil.Image):
        return _from_pil(source, detail)
    read = getattr(source, "read", None)
    if callable(read):
        data = read()
        if not isinstance(data, bytes):
            raise PromptError(f"an image file must be opened in binary mode (open(path, 'rb')); its read() gave "
                              f"{type(data).__name__}")
        return ImagePart(data, sniff_mime(data, what="the image file's bytes"), detail=detail)
    raise PromptError(f"an image source must be {_SOURCE_KINDS}; got {type(source).__name__}")


def _from_path(path: Path, detail: str | None) -> ImagePart:
    shown = str(path) if len(str(path)) <= 200 else str(path)[:197] + "..."
    try:
        data = path.expanduser().read_bytes()
    except FileNotFoundError:
        raise PromptError(f"image file not found: {shown!r} (a source string is a file path, an http(s) URL or "
                          "a data: URL)") from None
    except IsADirectoryError:
        raise PromptError(f"image source {shown!r} is a directory, not an image file") from None
    except OSError as exc:
        raise PromptError(f"image file {shown!r} cannot be read: {exc.strerror or exc}") from None
    return ImagePart(data, sniff_mime(data, what=f"image file {shown!r}"), detail=detail)


def _from_data_url(url: str, detail: str | None) -> ImagePart:
    match = _DATA_URL.fullmatch(url)
    if match is None or ";base64" not in match["params"].lower():
        raise PromptError("an image data URL must be base64: 'data:image/png;base64,...'; got one starting "
                          f"{url[:40]!r}")
    data = _b64decode(match["data"], "the image data URL")
    # The bytes say what they are: a data URL labelled image/png that holds a JPEG is sent as image/jpeg.
    return ImagePart(data, sniff_mime(data, what="the image data URL's bytes"), detail=detail)


def _from_block(block: dict[str, Any], detail: str | None) -> ImagePart:
    """Anthropic's ``source`` blocks, which the original library also passed through."""
    kind = block.get("type")
    if kind == "base64" and isinstance(block.get("data"), str):
        data = _b64decode(block["data"], "the image's base64 data")
        return ImagePart(data, sniff_mime(data, what="the image's base64 data"), detail=detail)
    if kind == "url" and isinstance(block.get("url"), str):
        return image_part(block["url"], detail=detail)
    raise PromptError(f"an image source dict must be {{'type': 'base64', 'media_type': ..., 'data': ...}} or "
                      f"{{'type': 'url', 'url': ...}}; got keys {sorted(block)}")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise PromptError(f"{what} is not valid base64") from None


def _from_pil(image: Any, detail: str | None) -> ImagePart:
    # Kept in its own format when a chat API takes it (a JPEG photo stays a JPEG, not a PNG ten times larger);
    # an image made in memory (no format) is saved as PNG, losslessly.
    fmt = str(image.format or "").upper()
    fmt = fmt if fmt in _PIL_FORMATS else "PNG"
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError) as exc:
        raise PromptError(f"the PIL image cannot be saved as {fmt} ({exc}); convert it first, "
                          "e.g. image.convert('RGB')") from None
    data = buffer.getvalue()
    return ImagePart(data, sniff_mime(data, what="the PIL image"), detail=detail)


def normalize_parts(content: Any) -> Any:
    """Message content with every image part as ``{"type": "image", "source": ImagePart}`` (idempotent:
    what is already normalised is returned as it is; text and provider-native parts are untouched)."""
    if not isinstance(content, list):
        return content
    out: list[Any] = []
    changed = False
    for part in content:
        new = _normalize_part(part) if isinstance(part, dict) else part
        changed = changed or new is not part
        out.append(new)
    return out if changed else content


def _normalize_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "image":
        source = part.get("source")
        if isinstance(source, ImagePart) and set(part) <= {"type", "source", "cache_control"}:
            return part
        if "source" not in part:
            raise PromptError("an image part needs a source: {'type': 'image', 'source': <" + _SOURCE_KINDS + ">}")
        extra = set(part) - {"type", "source", "detail", "cache_control"}
        if extra:
            raise PromptError(f"an image part takes 'source' (and 'detail', 'cache_control'); got also {sorted(extra)}")
        return _with_cache_control({"type": "image", "source": image_part(source, detail=part.get("detail"))}, part)
    if kind == "image_url":
        value = part.get("image_url")
        if isinstance(value, dict):
            url, detail = value.get("url"), value.get("detail")
        else:
            url, detail = value, None
        if isinstance(url, ImagePart):
            return _with_cache_control({"type": "image", "source": image_part(url, detail=detail)}, part)
        if not isinstance(url, str) or not url.strip():
            raise PromptError("an image_url part needs a URL: {'type': 'image_url', 'image_url': {'url': "
                              "'https://...' or 'data:image/png;base64,...'}}")
        if not url.strip().startswith(("http://", "https://")) and url.strip()[:5].lower() != "data:":
            raise PromptError(f"an image_url part's url must be an http(s) or data: URL; got one starting "
                              f"{url[:40]!r} (for a file, use {{'type': 'image', 'source': path}})")
        return _with_cache_control({"type": "image", "source": image_part(url, detail=detail)}, part)
    return part


def _with_cache_control(new: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's prompt-caching mark stays on the part (the providers that have no such mark drop it)."""
    if "cache_control" in part:
        new["cache_control"] = part["cache_control"]
    return new


def json_default(value: Any) -> Any:
    """``json.dumps``'s ``default`` for keys and fingerprints: an image by its content, anything else by ``str``."""
    if isinstance(value, ImagePart):
        return value.identity()
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes_sha256": hashlib.sha256(value).hexdigest()}
    return str(value)
