"""The official openai SDK against the gateway: passthrough to an OpenAI-style
upstream and translation to an Anthropic one, streaming and tools included."""

import json

import openai
import pytest

from conftest import MASTER_KEY

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0)


def test_chat_passthrough(client, upstream):
    reply = client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "hello"}],
        temperature=0.2,
        extra_body={"custom_field": {"kept": True}},
    )
    assert reply.choices[0].message.content == "Hello from the mock model mock-gpt. You said: hello"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    [call] = upstream.requests()
    assert call["body"] == {
        "messages": [{"role": "user", "content": "hello"}],
        "model": "mock-gpt",
        "temperature": 0.2,
        "custom_field": {"kept": True},
    }
    assert call["headers"].get("authorization") is None, "the master key is not sent upstream"


def test_chat_stream_passthrough(client, upstream):
    stream = client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the mock model mock-gpt. You said: stream it"
    assert chunks[-1].usage.completion_tokens > 0


def test_chat_translated_to_anthropic(client, upstream):
    reply = client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "bonjour"}],
        max_tokens=50,
    )
    assert reply.choices[0].message.content == "Hello from the mock model mock-claude. You said: bonjour"
    assert reply.choices[0].finish_reason == "stop"
    [call] = upstream.requests()
    assert call["path"] == "/v1/messages"
    assert call["body"]["system"] == "Be brief."
    assert call["body"]["max_tokens"] == 50


def test_tool_call_stream_translated_from_anthropic(client, upstream):
    stream = client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "Oslo"}], tools=[WEATHER], stream=True
    )
    calls = {}
    finish = None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            entry = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            entry["name"] += delta.function.name or ""
            entry["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert calls[0]["name"] == "weather"
    assert json.loads(calls[0]["arguments"]) == {"input": "Oslo"}


def test_tool_call_round_trip_translated(client, upstream):
    first = client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Rome"}], tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    second = client.chat.completions.create(
        model="claude",
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Rome"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "22 degrees"},
        ],
    )
    assert second.choices[0].message.content == "The tool said: 22 degrees"


def test_embeddings(client, upstream):
    result = client.embeddings.create(model="embed", input=["one", "two"])
    assert [len(item.embedding) for item in result.data] == [8, 8]
    assert upstream.requests()[0]["body"]["encoding_format"] == "base64", "the SDK's default passes through"


def test_models_list(client):
    assert sorted(m.id for m in client.models.list()) == ["claude", "embed", "gpt", "local"]


def test_errors_are_openai_errors(client, gateway):
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert "available models: claude, embed, gpt, local" in str(not_found.value)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gpt", messages="not a list")
    assert "`messages` is required and must be an array" in str(bad.value)
    wrong_key = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong_key.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x"}])


WEATHER_RESPONSES = {"type": "function", **WEATHER["function"]}


def test_responses_translated_to_anthropic(client, upstream):
    reply = client.responses.create(model="claude", instructions="Be brief.", input="bonjour", max_output_tokens=50)
    assert reply.output_text == "Hello from the mock model mock-claude. You said: bonjour"
    assert reply.status == "completed"
    assert reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens
    assert reply.usage.output_tokens > 0
    [call] = upstream.requests()
    assert call["path"] == "/v1/messages"
    assert call["body"]["system"] == "Be brief."
    assert call["body"]["max_tokens"] == 50
    assert call["body"]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "bonjour"}]}]


@pytest.mark.parametrize(("model", "path"), [("claude", "/v1/messages"), ("local", "/v1/chat/completions")])
def test_responses_function_call_round_trip_streamed(client, upstream, model, path):
    with client.responses.stream(model=model, input="Oslo", tools=[WEATHER_RESPONSES]) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        first = stream.get_final_response()
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "weather"
    assert json.loads(call.arguments) == {"input": "Oslo"}
    assert "".join(deltas) == call.arguments
    assert first.usage.output_tokens > 0
    second = client.responses.create(
        model=model,
        tools=[WEATHER_RESPONSES],
        stream=True,
        input=[
            {"role": "user", "content": "Oslo"},
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees"},
        ],
    )
    events = list(second)
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "The tool said: 22 degrees"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "The tool said: 22 degrees"
    assert [c["path"] for c in upstream.requests()] == [path, path]


def test_responses_refuse_stored_state_on_translated_models(client, upstream):
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="claude", input="again", previous_response_id="resp_1")
    assert "send the whole conversation in `input`" in str(refused.value)
    assert upstream.requests() == []
