"""Long-term memory across both official SDKs: a turn streamed through the openai SDK
is remembered, and recalled into the system prompt of a later Anthropic request by
the same user in the same project, and of nobody else's."""

import json
import time
import urllib.request

import anthropic
import openai

from conftest import MASTER_KEY

SCOPE = {"x-memory-user-id": "ana", "x-memory-project": "/srv/shop"}


def memories(gateway, headers):
    request = urllib.request.Request(
        f"{gateway.url}/v1/memories", headers={"Authorization": f"Bearer {MASTER_KEY}", **headers}
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)["data"]


def test_a_turn_in_one_sdk_is_recalled_in_the_other(memory_gateway, upstream):
    chat = openai.OpenAI(
        base_url=f"{memory_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, default_headers=SCOPE
    )
    stream = chat.chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "Our staging cluster is called heron"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("Hello from the mock model")

    deadline = time.monotonic() + 5
    while not memories(memory_gateway, SCOPE) and time.monotonic() < deadline:
        time.sleep(0.05)
    [memory] = memories(memory_gateway, SCOPE)
    assert memory["text"].startswith("User: Our staging cluster is called heron\nAssistant: Hello from the mock")

    messages = anthropic.Anthropic(
        base_url=memory_gateway.url, api_key=MASTER_KEY, max_retries=0, default_headers=SCOPE
    )
    reply = messages.messages.create(
        model="claude",
        max_tokens=50,
        system="Be brief.",
        messages=[{"role": "user", "content": "What is the staging cluster called?"}],
    )
    assert reply.content[0].text.startswith("Hello from the mock model")
    system = upstream.requests()[-1]["body"]["system"]
    assert system.startswith("Be brief.\n\n<memories>") and "heron" in system, system

    other = anthropic.Anthropic(
        base_url=memory_gateway.url,
        api_key=MASTER_KEY,
        max_retries=0,
        default_headers={**SCOPE, "x-memory-user-id": "bo"},
    )
    other.messages.create(
        model="claude", max_tokens=50, system="Be brief.",
        messages=[{"role": "user", "content": "What is the staging cluster called?"}],
    )
    assert upstream.requests()[-1]["body"]["system"] == "Be brief."
