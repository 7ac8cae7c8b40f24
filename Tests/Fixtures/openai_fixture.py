#!/usr/bin/env python3
"""An OpenAI-compatible HTTP server for llmd's tests, speaking the real wire format.

POST /v1/chat/completions and /v1/completions, streaming (SSE over chunked transfer
encoding, with a final usage chunk when stream_options.include_usage asks for one) and
not. The model name picks a scenario, so a test chooses faults per call:

  fixture                    reply "echo: <last user text>" word by word
  fixture/tokens:N           reply with N tokens "t0 t1 ..." (benchmarks)
  fixture/tokens:N:US        the same, one every US microseconds on average
  fixture/slow:MS            MS milliseconds between tokens
  fixture/cut                stop after 3 tokens: connection closed, no [DONE]
  fixture/hang               send the response head, then nothing
  fixture/error-mid          an error object after 2 tokens, on the 200 stream
  fixture/no-usage           never send a usage chunk (llama.cpp, older servers)
  fixture/reject-stream-options   400 when stream_options is present (some servers)
  fixture/429-then-ok:N      N times 429 with Retry-After: 1, then a normal reply
  fixture/500-then-ok:N      N times 500, then a normal reply
  fixture/quota              429 insufficient_quota
  fixture/401 | fixture/400 | fixture/404    that status with an OpenAI error body
  fixture/vllm-error         400 in vLLM's {"object":"error"} dialect
  fixture/summary-fails      normal replies, but 500 to LangChain's summarising prompt
  fixture/cached:C:R         usage says C prompt tokens were cached and R completion
                             tokens were reasoning (OpenAI's *_tokens_details)
  fixture/tools              call the request's first tool (or get_weather) with
                             {"city": "Paris"}: tool_calls, streamed in pieces or whole,
                             content null, finish_reason "tool_calls"

OpenAI's own model names are served as "fixture" is, on the endpoint OpenAI serves them
on: a completion model (gpt-3.5-turbo-instruct, davinci-002, babbage-002) on
/v1/chat/completions, or a chat model (gpt-*) on /v1/completions, gets OpenAI's 404.
GET /v1/models lists MODELS, as OpenAI's API does, to a client with a key.

A request carrying LangChain's progressive-summary prompt is answered with
"summary of N lines", N being the lines of conversation it asks to fold in.

Counters for "-then-ok" scenarios are kept per model string; POST /_fixture/reset clears
them. GET /_fixture/log returns every request seen (path, model, headers without
Authorization's secret, body) and whether the client went away mid-response.

Usage: openai_fixture.py [--port N]; prints "listening on PORT" once ready.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
COUNTERS = {}
LOG = []


def usage_for(prompt_tokens, completion_tokens, scenario):
    cached, reasoning = 0, 0
    if scenario.startswith("cached:"):
        cached, reasoning = (int(n) for n in scenario.split(":")[1:3])
        completion_tokens += reasoning  # hidden reasoning is billed as completion
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


SUMMARY_PROMPT = "Progressively summarize the lines of conversation provided"

MODELS = ["fixture", "gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo-instruct"]
COMPLETION_MODELS = ("gpt-3.5-turbo-instruct", "davinci-002", "babbage-002")


def wrong_endpoint(path, model):
    """OpenAI's 404 for a model asked for on the endpoint it is not served on, or None."""
    if path == "/v1/chat/completions" and model.startswith(COMPLETION_MODELS):
        message = ("This is not a chat model and thus not supported in the v1/chat/completions endpoint. "
                   "Did you mean to use v1/completions?")
    elif path == "/v1/completions" and model.startswith("gpt-") and not model.startswith(COMPLETION_MODELS):
        message = ("This is a chat model and not supported in the v1/completions endpoint. "
                   "Did you mean to use v1/chat/completions?")
    else:
        return None
    return {"error": {"message": message, "type": "invalid_request_error", "param": "model", "code": None}}


def last_text(request):
    if "messages" in request:
        return request["messages"][-1]["content"] if request["messages"] else ""
    return request.get("prompt", "")


def reply_tokens(request, scenario):
    if scenario.startswith("tokens:"):
        return [f"t{i} " for i in range(int(scenario.split(":")[1]))]
    text = last_text(request)
    if text.startswith(SUMMARY_PROMPT):
        new_lines = text.rsplit("New lines of conversation:\n", 1)[1].split("\n\nNew summary:")[0]
        count = sum(1 for line in new_lines.split("\n") if line.startswith(("Human: ", "AI: ", "System: ")))
        return ["summary ", "of ", f"{count} ", "lines"]
    words = ("echo: " + text).split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def prompt_token_count(request):
    if "messages" in request:
        return sum(len(m.get("content", "").split()) + 4 for m in request["messages"])
    return len(request.get("prompt", "").split())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Like real API servers: without TCP_NODELAY each small SSE write waits for the ACK
    # of the previous one on a kept-alive connection, and a token can stall for 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/_fixture/log":
            with LOCK:
                self.send_json(200, LOG)
        elif self.path == "/v1/models":
            with LOCK:
                LOG.append({"path": self.path, "model": None, "headers": {}, "body": None, "client_gone": False})
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                self.send_json(401, {"error": {"message": "You didn't provide an API key.", "type": "invalid_request_error"}})
                return
            self.send_json(200, {"object": "list", "data": [
                {"id": name, "object": "model", "created": 1715367049, "owned_by": "llmd-fixture"} for name in MODELS]})
        else:
            self.send_json(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path == "/_fixture/reset":
            with LOCK:
                COUNTERS.clear()
                LOG.clear()
            self.send_json(200, {"ok": True})
            return
        try:
            request = json.loads(raw)
        except ValueError:
            self.send_json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        model = request.get("model", "fixture")
        scenario = model.split("/", 1)[1] if "/" in model else "ok"
        headers = {k.lower(): v for k, v in self.headers.items()}
        if "authorization" in headers:
            headers["authorization"] = headers["authorization"][:14]  # "Bearer sk-xxxx", never the whole key
        entry = {"path": self.path, "model": model, "headers": headers, "body": request, "client_gone": False}
        with LOCK:
            LOG.append(entry)
            count = COUNTERS.get(model, 0) + 1
            COUNTERS[model] = count

        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            self.send_json(404, {"error": {"message": f"unknown path {self.path}", "type": "invalid_request_error"}})
            return
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            self.send_json(401, {"error": {"message": "You didn't provide an API key.", "type": "invalid_request_error"}})
            return
        misdirected = wrong_endpoint(self.path, model)
        if misdirected:
            self.send_json(404, misdirected)
            return
        for name, status in (("429-then-ok:", 429), ("500-then-ok:", 500)):
            if scenario.startswith(name) and count <= int(scenario.split(":")[1]):
                extra = {"Retry-After": "1"} if status == 429 else {}
                self.send_json(status, {"error": {"message": f"fixture {status} #{count}", "type": "server_error",
                                                  "code": "rate_limit_exceeded" if status == 429 else None}}, extra)
                return
        simple = {
            "quota": (429, {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                                      "code": "insufficient_quota"}}),
            "401": (401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                    "code": "invalid_api_key"}}),
            "400": (400, {"error": {"message": "bad request", "type": "invalid_request_error", "code": None}}),
            "404": (404, {"error": {"message": f"The model `{model}` does not exist", "type": "invalid_request_error",
                                    "code": "model_not_found"}}),
            "vllm-error": (400, {"object": "error", "message": "vLLM says no", "type": "BadRequestError", "code": 400}),
        }
        if scenario in simple:
            self.send_json(*simple[scenario])
            return
        if scenario == "summary-fails" and last_text(request).startswith(SUMMARY_PROMPT):
            self.send_json(500, {"error": {"message": "summaries are down", "type": "server_error", "code": None}})
            return
        if scenario == "reject-stream-options" and "stream_options" in request:
            self.send_json(400, {"object": "error", "message": "stream_options is not supported",
                                 "type": "BadRequestError", "code": 400})
            return

        if scenario == "tools":
            self.tool_call(request)
            return
        tokens = reply_tokens(request, scenario)
        chat = self.path == "/v1/chat/completions"
        usage = usage_for(prompt_token_count(request), len(tokens), scenario)
        if not request.get("stream"):
            text = "".join(tokens)
            choice = {"index": 0, "finish_reason": "stop"}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            body = {"id": "fx-1", "object": "chat.completion" if chat else "text_completion", "model": model,
                    "choices": [choice]}
            if scenario != "no-usage":
                body["usage"] = usage
            self.send_json(200, body)
            return
        self.stream(entry, request, scenario, tokens, chat, usage)

    def stream(self, entry, request, scenario, tokens, chat, usage):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        delay = 0
        # tokens:N:US keeps to a schedule, token i due US*i after the first, so a rate
        # finer than time.sleep's granularity holds on average; slow:MS sleeps after each.
        paced = scenario.startswith("tokens:") and scenario.count(":") == 2
        if scenario.startswith("slow:"):
            delay = int(scenario.split(":")[1]) / 1000
        elif paced:
            delay = int(scenario.split(":")[2]) / 1e6
        begun = time.perf_counter()
        try:
            if scenario == "hang":
                self.wfile.flush()
                time.sleep(30)
                return
            self.chunk(b": fixture keep-alive\n\n")
            for i, token in enumerate(tokens):
                if scenario == "cut" and i == 3:
                    self.close_connection = True
                    return  # no terminating chunk: the client sees the stream break
                if scenario == "error-mid" and i == 2:
                    self.event({"error": {"message": "The server had an error while processing your request.",
                                          "type": "server_error"}})
                    break
                choice = {"index": 0, "finish_reason": None}
                choice.update({"delta": {"content": token}} if chat else {"text": token})
                self.event({"id": "fx-1", "object": "chat.completion.chunk" if chat else "text_completion",
                            "model": request.get("model"), "choices": [choice]})
                if paced:
                    ahead = begun + (i + 1) * delay - time.perf_counter()
                    if ahead > 0:
                        time.sleep(ahead)
                elif delay:
                    time.sleep(delay)
            else:
                final = {"index": 0, "finish_reason": "stop"}
                final.update({"delta": {}} if chat else {"text": ""})
                # As OpenAI's, every chunk names the model, the last ones too.
                self.event({"id": "fx-1", "object": "chat.completion.chunk", "model": request.get("model"),
                            "choices": [final]})
                include = (request.get("stream_options") or {}).get("include_usage")
                if include and scenario != "no-usage":
                    self.event({"id": "fx-1", "object": "chat.completion.chunk", "model": request.get("model"),
                                "choices": [], "usage": usage})
            self.chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            with LOCK:
                entry["client_gone"] = True
            self.close_connection = True

    def tool_call(self, request):
        """One call of the request's first tool, as OpenAI makes it: whole, or streamed as
        tool_calls deltas (the id, type and name first, then the arguments in pieces)."""
        tools = request.get("tools") or []
        name = (tools[0].get("function") or {}).get("name", "get_weather") if tools else "get_weather"
        arguments = ['{"city": ', '"Paris"}']
        usage = usage_for(prompt_token_count(request), 9, "ok")
        call = {"id": "call_fx1", "type": "function", "function": {"name": name, "arguments": "".join(arguments)}}
        if not request.get("stream"):
            self.send_json(200, {"id": "fx-1", "object": "chat.completion", "model": request.get("model"),
                                 "choices": [{"index": 0, "finish_reason": "tool_calls",
                                              "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
                                 "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        first = {"index": 0, "id": "call_fx1", "type": "function", "function": {"name": name, "arguments": ""}}
        deltas = [{"role": "assistant", "content": None, "tool_calls": [first]}]
        deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} for piece in arguments]
        for delta in deltas:
            self.event({"id": "fx-1", "object": "chat.completion.chunk", "model": request.get("model"),
                        "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self.event({"id": "fx-1", "object": "chat.completion.chunk", "model": request.get("model"),
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        if (request.get("stream_options") or {}).get("include_usage"):
            self.event({"id": "fx-1", "object": "chat.completion.chunk", "model": request.get("model"), "choices": [],
                        "usage": usage})
        self.chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def event(self, payload):
        self.chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_json(self, status, payload, extra_headers=None):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    ThreadingHTTPServer.request_queue_size = 1024  # benchmarks open hundreds of streams at once
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
