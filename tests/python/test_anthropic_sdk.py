"""The official anthropic SDK against the gateway: passthrough to an Anthropic
upstream and translation to an OpenAI one, streaming and tools included."""

import anthropic
import pytest

from conftest import MASTER_KEY

WEATHER = {"name": "weather", "description": "Weather by city", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
def client(gateway):
    # The SDK appends /v1/messages itself: the base URL has no /v1.
    return anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0)


def test_messages_passthrough(client, upstream):
    reply = client.messages.create(
        model="claude",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31", "anthropic-version": "2099-01-01"},
    )
    assert reply.content[0].text == "Hello from the mock model mock-claude. You said: hello"
    assert reply.stop_reason == "end_turn"
    [call] = upstream.requests()
    assert call["body"]["system"] == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    assert call["body"]["model"] == "mock-claude"
    assert call["headers"]["anthropic-version"] == "2099-01-01", "the client's version goes up untouched"
    assert call["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert call["headers"].get("x-api-key") is None, "the master key is not sent upstream"


def test_messages_stream_passthrough(client, upstream):
    with client.messages.stream(model="claude", max_tokens=64, messages=[{"role": "user", "content": "stream"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the mock model mock-claude. You said: stream"
    assert final.usage.output_tokens > 0


def test_messages_translated_to_openai(client, upstream):
    reply = client.messages.create(
        model="gpt", max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "ciao"}]
    )
    assert reply.content[0].text == "Hello from the mock model mock-gpt. You said: ciao"
    assert reply.usage.input_tokens > 0
    [call] = upstream.requests()
    assert call["path"] == "/v1/chat/completions"
    assert call["body"]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_tool_use_stream_translated_from_openai(client, upstream):
    with client.messages.stream(
        model="gpt", max_tokens=64, tools=[WEATHER], messages=[{"role": "user", "content": "Lima"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    [block] = final.content
    assert block.type == "tool_use" and block.name == "weather"
    assert block.input == {"input": "Lima"}


def test_tool_result_round_trip_translated(client, upstream):
    first = client.messages.create(model="gpt", max_tokens=64, tools=[WEATHER], messages=[{"role": "user", "content": "Kyiv"}])
    tool_use = first.content[0]
    second = client.messages.create(
        model="gpt",
        max_tokens=64,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Kyiv"},
            {"role": "assistant", "content": [block.model_dump() for block in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "cold"}]},
        ],
    )
    assert second.content[0].text == "The tool said: cold"


def test_count_tokens(client, upstream):
    counted = client.messages.count_tokens(model="claude", messages=[{"role": "user", "content": "how many tokens is this"}])
    assert counted.input_tokens > 0
    assert upstream.requests()[0]["path"] == "/v1/messages/count_tokens"


def test_errors_are_anthropic_errors(client, gateway):
    with pytest.raises(anthropic.NotFoundError) as not_found:
        client.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert not_found.value.body["error"]["type"] == "not_found_error"
    wrong_key = anthropic.Anthropic(base_url=gateway.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        wrong_key.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "x"}])
