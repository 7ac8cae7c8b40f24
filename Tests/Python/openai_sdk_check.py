"""OpenAI's own Python SDK against llmd's HTTP API, over http.sock.

Usage: openai_sdk_check.py HTTP_SOCKET MODEL TCP_BASE_URL KEY

Makes four calls, a chat and a legacy completion, each whole and streamed (with
stream_options.include_usage), checks that the SDK parsed every response into its own
types, and prints what it received as JSON: for each call its id, text, finish reason and
usage, and the models /v1/models listed. Then, over llmd's TCP listener with KEY, a
streamed chat, and the refusal of a wrong key; and over the socket a call whose model
calls a tool (the fixture's tools scenario), whole and streamed, as the SDK types it.
PythonClientTests.swift compares that with llmd's ledger and events.
"""
import json
import sys

import httpx2
import openai

PROMPT = "Hello from the OpenAI SDK"


def stream_text(chunks, text_of):
    """The text, finish reason, id and usage of a stream of chunks, as the SDK typed them."""
    pieces, finish, ids, usage = [], None, set(), None
    for chunk in chunks:
        ids.add(chunk.id)
        if chunk.usage is not None:
            assert chunk.choices == [], f"usage chunk with choices: {chunk}"
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(text_of(choice) or "")
            finish = choice.finish_reason or finish
    assert len(ids) == 1, f"one id for the whole stream, got {ids}"
    assert usage is not None, "stream_options.include_usage asked for a usage chunk"
    return "".join(pieces), finish, ids.pop(), usage


def summary(kind, id, text, finish, usage):
    return {
        "kind": kind, "id": id, "text": text, "finish_reason": finish,
        "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                  "total_tokens": usage.total_tokens},
    }


def main():
    socket_path, model, tcp_base_url, key = sys.argv[1:5]
    # The host is a placeholder: the transport connects to the socket whatever the URL says.
    client = openai.OpenAI(
        base_url="http://llmd/v1", api_key="unused", max_retries=0,
        http_client=httpx2.Client(transport=httpx2.HTTPTransport(uds=socket_path)))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    calls = []

    chat = client.chat.completions.create(model=model, messages=messages)
    assert isinstance(chat, openai.types.chat.ChatCompletion), type(chat)
    assert chat.object == "chat.completion" and chat.id.startswith("chatcmpl-"), chat
    calls.append(summary("chat", chat.id, chat.choices[0].message.content, chat.choices[0].finish_reason, chat.usage))

    stream = client.chat.completions.create(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True})
    text, finish, id, usage = stream_text(stream, lambda choice: choice.delta.content)
    assert id.startswith("chatcmpl-"), id
    calls.append(summary("chat_stream", id, text, finish, usage))

    completion = client.completions.create(model=model, prompt=PROMPT)
    assert isinstance(completion, openai.types.Completion), type(completion)
    assert completion.object == "text_completion" and completion.id.startswith("cmpl-"), completion
    calls.append(summary("completion", completion.id, completion.choices[0].text, completion.choices[0].finish_reason,
                         completion.usage))

    stream = client.completions.create(model=model, prompt=PROMPT, stream=True, stream_options={"include_usage": True})
    text, finish, id, usage = stream_text(stream, lambda choice: choice.text)
    assert id.startswith("cmpl-"), id
    calls.append(summary("completion_stream", id, text, finish, usage))

    # An error comes back as the SDK's own exception, with OpenAI's status and code.
    try:
        client.chat.completions.create(model=model, messages=[])
        raise AssertionError("an empty conversation was accepted")
    except openai.BadRequestError as error:
        bad_request = {"status": error.status_code, "error": error.body}

    models = [entry.id for entry in client.models.list()]

    # Over TCP, as a program that only speaks TCP reaches llmd: with a key, and without.
    tcp = openai.OpenAI(base_url=tcp_base_url, api_key=key, max_retries=0)
    stream = tcp.chat.completions.create(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True})
    text, finish, id, usage = stream_text(stream, lambda choice: choice.delta.content)
    calls.append(summary("tcp_chat_stream", id, text, finish, usage))
    try:
        openai.OpenAI(base_url=tcp_base_url, api_key="llmd-wrong", max_retries=0).models.list()
        raise AssertionError("a wrong key was accepted")
    except openai.AuthenticationError as error:
        wrong_key = {"status": error.status_code, "code": error.code}

    # A tool call, whole and streamed in pieces, as the SDK puts it together.
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    weather = [{"role": "user", "content": "Weather in Paris?"}]
    whole = client.chat.completions.create(model="fixture/tools", messages=weather, tools=tools)
    call = whole.choices[0].message.tool_calls[0]
    tool_calls = {"whole": {"finish_reason": whole.choices[0].finish_reason, "name": call.function.name,
                            "arguments": call.function.arguments}}
    pieces = {}
    for chunk in client.chat.completions.create(model="fixture/tools", messages=weather, tools=tools, stream=True):
        for choice in chunk.choices:
            for piece in choice.delta.tool_calls or []:
                entry = pieces.setdefault(piece.index, {"name": None, "arguments": ""})
                if piece.function and piece.function.name:
                    entry["name"] = piece.function.name
                if piece.function and piece.function.arguments:
                    entry["arguments"] += piece.function.arguments
    tool_calls["streamed"] = pieces[0]
    print(json.dumps({"calls": calls, "bad_request": bad_request, "models": models, "wrong_key": wrong_key,
                      "tool_calls": tool_calls}))


if __name__ == "__main__":
    main()
