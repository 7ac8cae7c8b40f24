"""Simon Willison's `llm` CLI against llmd's HTTP API, as an OpenAI-compatible model.

Usage: llm_check.py HTTP_SOCKET MODEL

`llm` builds its OpenAI client from the model entry's api_base alone, with no way to give
it a transport, and its HTTP library (httpx2) takes no Unix socket in a URL: `llm` reaches
HTTP over TCP only. Until llmd listens on loopback TCP itself, this script relays a
loopback port to http.sock byte for byte, so that `llm` runs unmodified with the entry a
user writes in extra-openai-models.yaml. It makes a streamed and a whole call with the
`llm` executable, reads what `llm` logged of them (`llm logs --json`), and prints the
replies and the usage `llm` recorded as JSON.
"""
import json
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading

PROMPTS = ["Streamed through llm", "Whole through llm"]


class Relay(socketserver.ThreadingTCPServer):
    """A loopback TCP port whose connections are piped to a Unix socket."""

    daemon_threads = True

    def __init__(self, unix_path):
        self.unix_path = unix_path
        super().__init__(("127.0.0.1", 0), RelayConnection)


class RelayConnection(socketserver.BaseRequestHandler):
    def handle(self):
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self.server.unix_path)
        back = threading.Thread(target=pipe, args=(upstream, self.request), daemon=True)
        back.start()
        pipe(self.request, upstream)
        back.join()
        upstream.close()


def pipe(source, destination):
    """Copies until the source's end, then passes the end on."""
    while data := source.recv(65536):
        destination.sendall(data)
    try:
        destination.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def main():
    socket_path, model = sys.argv[1], sys.argv[2]
    relay = Relay(socket_path)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    llm = os.path.join(os.path.dirname(sys.executable), "llm")
    with tempfile.TemporaryDirectory() as user_path:
        with open(os.path.join(user_path, "extra-openai-models.yaml"), "w") as entries:
            entries.write(f"- model_id: llmd\n  model_name: {model}\n"
                          f"  api_base: http://127.0.0.1:{relay.server_address[1]}/v1\n")
        environment = {name: value for name, value in os.environ.items() if not name.startswith("OPENAI_")}
        environment["LLM_USER_PATH"] = user_path

        def run(*arguments):
            result = subprocess.run([llm, *arguments], env=environment, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"llm {arguments}: {result.returncode}\n{result.stderr}"
            return result.stdout

        replies = [run("-m", "llmd", PROMPTS[0]).rstrip("\n"), run("-m", "llmd", "--no-stream", PROMPTS[1]).rstrip("\n")]
        logged = json.loads(run("logs", "--json", "-n", "2"))
    relay.shutdown()
    logged.sort(key=lambda entry: PROMPTS.index(entry["prompt"]))
    print(json.dumps({
        "replies": replies,
        "logged": [{"prompt": entry["prompt"], "response": entry["response"], "model": entry["model"],
                    "input_tokens": entry["input_tokens"], "output_tokens": entry["output_tokens"]}
                   for entry in logged],
    }))


if __name__ == "__main__":
    main()
