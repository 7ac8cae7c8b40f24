"""Simon Willison's `llm` CLI against llmd's HTTP API, as an OpenAI-compatible model.

Usage: llm_check.py TCP_BASE_URL KEY MODEL

`llm` reaches HTTP over TCP only: its model entries give an api_base, no transport. So it
talks to llmd's TCP listener, with a key made by `llmctl key create` and stored as a user
stores one (`llm keys set`), from the entry a user writes in extra-openai-models.yaml. It
makes a streamed and a whole call with the `llm` executable, reads what `llm` logged of
them (`llm logs --json`), and prints the replies and the usage `llm` recorded as JSON.
"""
import json
import os
import subprocess
import sys
import tempfile

PROMPTS = ["Streamed through llm", "Whole through llm"]


def main():
    base_url, key, model = sys.argv[1:4]
    llm = os.path.join(os.path.dirname(sys.executable), "llm")
    with tempfile.TemporaryDirectory() as user_path:
        with open(os.path.join(user_path, "extra-openai-models.yaml"), "w") as entries:
            entries.write(f"- model_id: llmd\n  model_name: {model}\n  api_base: {base_url}\n  api_key_name: llmd\n")
        environment = {name: value for name, value in os.environ.items() if not name.startswith("OPENAI_")}
        environment["LLM_USER_PATH"] = user_path

        def run(*arguments):
            result = subprocess.run([llm, *arguments], env=environment, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"llm {arguments}: {result.returncode}\n{result.stderr}"
            return result.stdout

        # As a user stores a key: `llm keys set NAME` reads it from standard input.
        stored = subprocess.run([llm, "keys", "set", "llmd"], input=key, env=environment, capture_output=True, text=True)
        assert stored.returncode == 0, stored.stderr
        replies = [run("-m", "llmd", PROMPTS[0]).rstrip("\n"), run("-m", "llmd", "--no-stream", PROMPTS[1]).rstrip("\n")]
        logged = json.loads(run("logs", "--json", "-n", "2"))
    logged.sort(key=lambda entry: PROMPTS.index(entry["prompt"]))
    print(json.dumps({
        "replies": replies,
        "logged": [{"prompt": entry["prompt"], "response": entry["response"], "model": entry["model"],
                    "input_tokens": entry["input_tokens"], "output_tokens": entry["output_tokens"]}
                   for entry in logged],
    }))


if __name__ == "__main__":
    main()
