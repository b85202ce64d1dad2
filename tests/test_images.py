"""Images in prompts (issue #15 item 7): every source kind the original library took, sent to each provider
in its own form with the MIME type its bytes say, keyed in the cache by content, never shown as base64.

Everything goes over real HTTP to the mock server, which checks image parts as the real APIs do (a
mislabelled media type or bytes that are not an image are a 400) and names what arrived in its answer
(``[image/jpeg 633 B sha256:...]``), so each test sees the image the server received.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, PngImagePlugin

from seeds_nb import (
    AnthropicClient,
    BaseClient,
    GoogleClient,
    Message,
    MockServer,
    OpenAIClient,
    OpenRouterClient,
    PromptError,
    SelfHostedClient,
)
from seeds_nb.core.images import IMAGE_TOKENS, ImagePart, image_part, sniff_mime
from seeds_nb.core.types import prompt_text

from _support import TEST_KEY, BatchClock


def encoded(fmt: str, color: str = "red", size: tuple[int, int] = (4, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def tagged(color: str) -> bytes:
    """A PNG whose first ~200 bytes are metadata, the same for every color."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "seeds_nb test camera " + "x" * 150)
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), color).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


PNG, JPEG, GIF, WEBP = encoded("PNG"), encoded("JPEG"), encoded("GIF"), encoded("WEBP")


def seen(data: bytes, mime: str) -> str:
    """How the mock names an image it received."""
    return f"[{mime} {len(data)} B sha256:{hashlib.sha256(data).hexdigest()[:12]}]"


def stored_bytes(directory: Path) -> bytes:
    """Everything written in ``directory``'s files."""
    return b"".join(f.read_bytes() for f in directory.iterdir() if f.is_file())


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def prompt(source: Any, text: str = "What is in this picture?") -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": text}, {"type": "image", "source": source}]}]


# -- MIME sniffing ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "mime"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"),
                                            (WEBP, "image/webp")])
def test_mime_comes_from_the_bytes(data: bytes, mime: str) -> None:
    assert sniff_mime(data) == mime
    assert image_part(data).mime == mime


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"),
    (b"just some text, not an image", "not a recognised file type"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "looks like application/pdf"),
    (encoded("BMP"), "looks like image/bmp"),  # an image, but not one the chat APIs take
    (b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>', "not a recognised file type"),
])
def test_what_is_not_a_sendable_image_is_a_clear_prompt_error(data: bytes, message: str) -> None:
    with pytest.raises(PromptError, match=message) as info:
        image_part(data)
    assert "image/png" in str(info.value)  # the error lists what is accepted


# -- every source kind becomes one ImagePart ---------------------------------------------------------

@pytest.fixture
def jpeg_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"  # the name lies: the bytes are a JPEG, and they decide
    path.write_bytes(JPEG)
    return path


def test_every_source_kind_gives_the_same_image(jpeg_file: Path) -> None:
    opened = jpeg_file.open("rb")
    with opened:
        sources: list[Any] = [JPEG, bytearray(JPEG), memoryview(JPEG), str(jpeg_file), jpeg_file, opened,
                              data_url(JPEG, "image/jpeg"), data_url(JPEG, "image/png"),  # mislabelled: sniffed
                              {"type": "base64", "media_type": "image/jpeg", "data": base64.b64encode(JPEG).decode()},
                              Image.open(io.BytesIO(JPEG))]  # a PIL image keeps its own format (JPEG)
        parts = [image_part(source) for source in sources]
    assert all(part == parts[0] for part in parts)
    assert parts[0].mime == "image/jpeg" and parts[0].data == JPEG and parts[0].url is None
    url = image_part("https://example.com/cat.jpg")
    assert url.url == "https://example.com/cat.jpg" and url.data is None and url != parts[0]
    assert image_part({"type": "url", "url": "https://example.com/cat.jpg"}) == url


def test_a_pil_image_made_in_memory_is_sent_as_png() -> None:
    part = image_part(Image.new("RGBA", (3, 3), (0, 128, 255, 100)))
    assert part.mime == "image/png" and Image.open(io.BytesIO(part.data or b"")).size == (3, 3)


def test_a_missing_file_names_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "scan.jpg"
    for source in (missing, str(missing)):
        with pytest.raises(PromptError, match="image file not found") as info:
            Message("user", [{"type": "image", "source": source}])
        assert str(missing) in str(info.value)
    with pytest.raises(PromptError, match="is a directory"):
        Message("user", [{"type": "image", "source": tmp_path}])


@pytest.mark.parametrize(("part", "message"), [
    ({"type": "image"}, "needs a source"),
    ({"type": "image", "source": 42}, "an image source must be bytes"),
    ({"type": "image", "source": "data:image/png,not-base64"}, "must be base64"),
    ({"type": "image", "source": "data:image/png;base64,@@@"}, "not valid base64"),
    ({"type": "image", "source": PNG, "detail": "ultra"}, "detail must be one of"),
    ({"type": "image", "source": PNG, "alt": "x"}, "got also \\['alt'\\]"),
    ({"type": "image_url", "image_url": {"url": "/tmp/cat.png"}}, "http\\(s\\) or data: URL"),
    ({"type": "image_url"}, "needs a URL"),
    ({"type": "image", "source": {"type": "file", "file_id": "f"}}, "source dict must be"),
])
def test_bad_image_parts_are_prompt_errors(part: dict[str, Any], message: str) -> None:
    with pytest.raises(PromptError, match=message):
        Message("user", [part])


def test_an_image_outside_a_user_message_is_refused() -> None:
    with pytest.raises(PromptError, match="only be in a user message"):
        Message("system", [{"type": "image", "source": PNG}])


def test_reprs_labels_and_excerpts_never_hold_the_base64() -> None:
    big = encoded("PNG", size=(600, 600)) + b"\x00" * 2_000_000  # ~2 MB (trailing bytes after IEND)
    message = Message("user", [{"type": "text", "text": "Describe"}, {"type": "image", "source": big}])
    b64 = base64.b64encode(big).decode()
    for shown in (repr(message), str(message), repr(message.images()[0]), message.text(), prompt_text([message])):
        assert b64[:40] not in shown and len(shown) < 300
    assert message.text() == f"Describe [image/png {len(big) / 1024 / 1024:.1f} MB]"
    assert repr(ImagePart(url="https://example.com/a.png")) == "ImagePart(image https://example.com/a.png)"


# -- each provider, each source kind, over HTTP ----------------------------------------------------

Factory = Callable[..., BaseClient]
PROVIDERS: dict[str, Factory] = {
    "openai": lambda s, **kw: OpenAIClient("gpt-4o-mini", api_key=TEST_KEY, base_url=s.url, **kw),
    "anthropic": lambda s, **kw: AnthropicClient("claude-sonnet-4-5", api_key=TEST_KEY, base_url=s.anthropic_url,
                                                 **kw),
    "google": lambda s, **kw: GoogleClient("gemini-2.5-flash", api_key=TEST_KEY, base_url=s.gemini_url, **kw),
    "openrouter": lambda s, **kw: OpenRouterClient("openai/gpt-4.1", api_key=TEST_KEY, base_url=s.url, **kw),
    "selfhosted": lambda s, **kw: SelfHostedClient("llama-3.1-8b", base_url=s.selfhosted_url,
                                                   usd_per_million_tokens=(0.1, 0.2), **kw),
}


def sent_image(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    """The image part of the last request's (only) user turn, as the provider's wire form has it."""
    if provider == "google":
        return body["contents"][0]["parts"][1]
    return body["messages"][0]["content"][1]


def inline_form(provider: str, data: bytes, mime: str) -> dict[str, Any]:
    b64 = base64.b64encode(data).decode()
    if provider == "anthropic":
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": b64}}
    if provider == "google":
        return {"inlineData": {"mimeType": mime, "data": b64}}
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{b64}"}}


def url_form(provider: str, url: str) -> dict[str, Any]:
    if provider == "anthropic":
        return {"type": "image", "source": {"type": "url", "url": url}}
    if provider == "google":
        return {"fileData": {"fileUri": url, "mimeType": "image/jpeg"}}
    return {"type": "image_url", "image_url": {"url": url}}


@pytest.fixture(params=list(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(provider: str, server: MockServer) -> Iterator[BaseClient]:
    made = PROVIDERS[provider](server)
    yield made
    made.close()


SOURCES: dict[str, Callable[[Path], Any]] = {
    "bytes": lambda path: path.read_bytes(),
    "str path": lambda path: str(path),
    "Path": lambda path: path,
    "data URL": lambda path: data_url(path.read_bytes(), "image/jpeg"),
    "PIL image": lambda path: Image.open(path),
    "image_url part": lambda path: {"image_url": {"url": data_url(path.read_bytes(), "image/jpeg")}},
}


@pytest.mark.parametrize("kind", list(SOURCES))
async def test_each_source_kind_reaches_each_provider_in_its_own_form(
        provider: str, client: BaseClient, server: MockServer, jpeg_file: Path, kind: str) -> None:
    source = SOURCES[kind](jpeg_file)
    if kind == "image_url part":  # OpenAI's form, accepted by every client
        messages = [{"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                                  {"type": "image_url", **source}]}]
    else:
        messages = prompt(source)
    response = await client.agenerate(messages)
    assert sent_image(provider, server.requests[-1]["body"]) == inline_form(provider, JPEG, "image/jpeg")
    assert response.content.startswith(f"Mock answer to 'What is in this picture?' {seen(JPEG, 'image/jpeg')}: ")
    assert response.usage.prompt_tokens and response.usage.prompt_tokens > 258  # the mock bills the image


async def test_a_url_is_sent_as_a_url(provider: str, client: BaseClient, server: MockServer) -> None:
    url = "https://example.com/pictures/cat.jpg"
    response = await client.agenerate(prompt(url))
    assert sent_image(provider, server.requests[-1]["body"]) == url_form(provider, url)
    assert f"[image {url}]" in response.content


async def test_bytes_are_sent_not_a_type_error(provider: str, client: BaseClient, server: MockServer) -> None:
    # Before: bytes in a content part could not be sent ("Object of type bytes is not JSON serializable").
    for data, mime in ((PNG, "image/png"), (GIF, "image/gif"), (WEBP, "image/webp")):
        response = await client.agenerate(prompt(data, "Describe"))
        assert sent_image(provider, server.requests[-1]["body"]) == inline_form(provider, data, mime)
        assert seen(data, mime) in response.content


async def test_several_images_in_order_and_a_batch(provider: str, client: BaseClient, server: MockServer) -> None:
    both = [{"role": "user", "content": [{"type": "text", "text": "Compare"}, {"type": "image", "source": PNG},
                                         {"type": "image", "source": JPEG}]}]
    response = await client.agenerate(both)
    assert f"{seen(PNG, 'image/png')} {seen(JPEG, 'image/jpeg')}" in response.content
    result = await client.batch_generate([prompt(PNG), prompt(JPEG), prompt(PNG)], max_concurrent=2)
    assert result.failed_count == 0
    assert [seen(PNG, "image/png") in r.content for r in result.responses if r] == [True, False, True]
    assert result.prompts[0] == f"What is in this picture? [image/png {len(PNG)} B]"  # the grid's excerpt


async def test_the_same_image_gets_the_same_answer_in_every_protocol(server: MockServer) -> None:
    answers = []
    for factory in PROVIDERS.values():
        with factory(server) as client:
            answers.append((await client.agenerate(prompt(JPEG))).content)
    assert len(set(answers)) == 1


def test_the_mock_refuses_what_the_real_apis_refuse(server: MockServer) -> None:
    png_as_jpeg = {"type": "base64", "media_type": "image/jpeg", "data": base64.b64encode(PNG).decode()}
    body = {"model": "claude-sonnet-4-5", "max_tokens": 16,
            "messages": [{"role": "user", "content": [{"type": "image", "source": png_as_jpeg}]}]}
    answer = httpx.post(f"{server.anthropic_url}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert answer.status_code == 400 and "does not match the provided media type" in answer.text
    gemini = {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": base64.b64encode(
        b"not an image").decode()}}]}]}
    answer = httpx.post(f"{server.gemini_url}/models/gemini-2.5-flash:generateContent", json=gemini)
    assert answer.status_code == 400 and "not a valid image" in answer.text
    chat = {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": data_url(PNG, "image/png")}}]},
        {"role": "user", "content": "hi"}]}
    answer = httpx.post(f"{server.url}/chat/completions", json=chat)
    assert answer.status_code == 400 and "only allowed for messages with role 'user'" in answer.text


async def test_openai_detail_is_sent_and_keyed(server: MockServer, tmp_path: Path) -> None:
    async with OpenAIClient("gpt-4o-mini", api_key=TEST_KEY, base_url=server.url, cache_dir=tmp_path) as client:
        low = [{"role": "user", "content": [{"type": "image", "source": PNG, "detail": "low"}]}]
        await client.agenerate(low)
        assert server.requests[-1]["body"]["messages"][0]["content"][0]["image_url"]["detail"] == "low"
        high = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(PNG, "image/png"),
                                                                                  "detail": "high"}}]}]
        assert not (await client.agenerate(high)).cached  # another detail is another answer
        assert (await client.agenerate(low)).cached


# -- the cache keys an image by its content ----------------------------------------------------------

async def test_two_images_never_share_a_cache_entry_and_one_image_always_does(
        provider: str, server: MockServer, tmp_path: Path) -> None:
    path = tmp_path / "scan.img"
    path.write_bytes(PNG)
    cache_dir = tmp_path / "cache"
    async with PROVIDERS[provider](server, cache_dir=cache_dir) as client:
        first = await client.agenerate(prompt(path))
        assert not first.cached and server.request_count == 1
        # the same image from bytes, a data URL, an image_url part, a PIL image: one entry
        for source in (PNG, data_url(PNG, "image/png"), Image.open(io.BytesIO(PNG))):
            again = await client.agenerate(prompt(source))
            assert again.cached and again.content == first.content
        assert server.request_count == 1
        # another image under the same file name (the original keyed a path by its name): a new entry
        path.write_bytes(JPEG)
        other = await client.agenerate(prompt(path))
        assert not other.cached and seen(JPEG, "image/jpeg") in other.content and server.request_count == 2
        # two data URLs that share their first 100 characters (the original keyed only those): two entries
        wide, wide_other = tagged("blue"), tagged("green")  # same metadata first (as one camera's photos)
        a, b = data_url(wide, "image/png"), data_url(wide_other, "image/png")
        assert a[:100] == b[:100] and a != b
        answer_a, answer_b = await client.agenerate(prompt(a)), await client.agenerate(prompt(b))
        assert not answer_b.cached and answer_a.content != answer_b.content and server.request_count == 4
        # a URL is keyed by the URL
        await client.agenerate(prompt("https://example.com/a.jpg"))
        assert (await client.agenerate(prompt("https://example.com/a.jpg"))).cached
        assert not (await client.agenerate(prompt("https://example.com/b.jpg"))).cached
    stored = stored_bytes(cache_dir)
    assert len(stored) > 4096
    assert base64.b64encode(wide)[:60] not in stored and wide[:200] not in stored  # no image in the cache file


def test_cache_keys_hash_the_image_not_its_name_or_prefix(tmp_path: Path) -> None:
    client = OpenAIClient("gpt-4o-mini", api_key=TEST_KEY, base_url="http://127.0.0.1:9", cache_dir=tmp_path)
    key = client.pipeline.key
    a = key((Message("user", [{"type": "image", "source": PNG}]),), {})
    b = key((Message("user", [{"type": "image", "source": data_url(PNG, "image/png")}]),), {})
    c = key((Message("user", [{"type": "image", "source": JPEG}]),), {})
    assert a == b != c
    client.close()


# -- what is counted before sending ---------------------------------------------------------------

async def test_an_image_counts_as_image_tokens_not_as_its_base64(server: MockServer) -> None:
    big = encoded("PNG", size=(8, 8)) + b"\x00" * 300_000
    async with OpenAIClient("gpt-4o-mini", api_key=TEST_KEY, base_url=server.url,
                            tokens_per_minute=50_000) as client:
        prepared = client.pipeline.prepare(prompt(big, "Describe"), {})
        assert IMAGE_TOKENS < prepared.estimate < IMAGE_TOKENS + 400  # not ~100k tokens of base64
        assert (await client.agenerate(prompt(big, "Describe"))).content  # and it is sent at once
        estimate = client.estimate([prompt(big, "Describe")] * 3)
    assert IMAGE_TOKENS * 3 < estimate.input_tokens < (IMAGE_TOKENS + 100) * 3
    assert any("each image counted as" in note for note in estimate.notes)


async def test_anthropic_prompt_caching_marks_stay_on_image_blocks(server: MockServer) -> None:
    part = {"type": "image", "source": PNG, "cache_control": {"type": "ephemeral"}}
    async with PROVIDERS["anthropic"](server) as client:
        first = await client.agenerate([{"role": "user", "content": [part, {"type": "text", "text": "Describe"}]}])
        block = server.requests[-1]["body"]["messages"][0]["content"][0]
        assert block["cache_control"] == {"type": "ephemeral"} and block["source"]["media_type"] == "image/png"
        again = await client.agenerate([{"role": "user", "content": [part, {"type": "text", "text": "Again"}]}],
                                       use_cache=False)
    assert first.usage.cache_write_tokens > 0 and again.usage.cached_tokens == first.usage.cache_write_tokens


@pytest.mark.parametrize("kind", ["openai", "anthropic", "google"])
async def test_images_go_through_a_batch_api_job(kind: str, tmp_path: Path) -> None:
    clock = BatchClock()
    with MockServer(batch_duration_s=3600.0, clock=clock) as server:
        async with PROVIDERS[kind](server) as client:
            job = await client.submit_batch([prompt(PNG), prompt(JPEG)], jobs_dir=tmp_path)
            clock.advance(7200.0)
            await job.wait(poll_interval=0.01)
            result = await job.results()
    assert result.successful_count == 2 and server.request_count == 0  # the Batch API only
    assert seen(PNG, "image/png") in result.contents[0] and seen(JPEG, "image/jpeg") in result.contents[1]
    assert result.prompts[1] == f"What is in this picture? [image/jpeg {len(JPEG)} B]"
    saved = stored_bytes(tmp_path)
    assert base64.b64encode(JPEG)[:40] not in saved  # the job's files keep labels, not images


def test_a_sink_fingerprint_is_the_image_content_not_its_path(tmp_path: Path) -> None:
    from seeds_nb.core.sink import prompt_hash

    path = tmp_path / "row.img"
    path.write_bytes(PNG)
    before = prompt_hash(prompt(path))
    assert before == prompt_hash(prompt(PNG)) == prompt_hash([Message(**prompt(str(path))[0])])
    path.write_bytes(JPEG)  # the row's file replaced: a resumed map sends it again
    assert prompt_hash(prompt(path)) != before


async def test_map_over_a_table_of_image_paths_resumes_by_image_content(server: MockServer, tmp_path: Path) -> None:
    photos = []
    for i, color in enumerate(("red", "blue", "green")):
        photos.append(tmp_path / f"p{i}.jpg")
        photos[-1].write_bytes(encoded("JPEG", color))
    rows = [{"photo": str(p), "id": i} for i, p in enumerate(photos)]

    def ask(row: dict[str, Any]) -> list[dict[str, Any]]:
        return prompt(row["photo"], "Describe")

    sink = tmp_path / "out.jsonl"
    async with PROVIDERS["google"](server) as client:
        await client.map(rows, ask, sink=sink)
        assert server.request_count == 3
        await client.map(rows, ask, sink=sink)  # nothing changed: nothing sent
        assert server.request_count == 3
        photos[1].write_bytes(encoded("JPEG", "purple"))  # one file replaced under the same name
        await client.map(rows, ask, sink=sink)
        assert server.request_count == 4
        table = await client.map(rows, ask)
    assert [seen(p.read_bytes(), "image/jpeg") in r["response"] for p, r in zip(photos, table, strict=True)] == \
        [True, True, True]


async def test_a_self_hosted_server_without_structured_output_gets_the_image_and_the_schema(
        server: MockServer) -> None:
    from pydantic import BaseModel

    class Caption(BaseModel):
        caption: str

    async with SelfHostedClient("llama-3.1-8b", base_url=server.selfhosted_url, structured_output="prompt",
                                usd_per_million_tokens=(0.1, 0.2)) as client:
        response = await client.agenerate(prompt(JPEG, "Caption this"), response_format=Caption)
    body = server.requests[-1]["body"]
    assert body["messages"][0]["role"] == "system" and "caption" in body["messages"][0]["content"]
    assert body["messages"][1]["content"][1] == inline_form("openai", JPEG, "image/jpeg")
    assert isinstance(response.parsed, Caption)
