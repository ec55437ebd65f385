"""Cost functions from a language model, against a local fake OpenAI-compatible server: the
prompt carries two exemplars and the request, good code is checked and used, bad answers
and unreachable servers give clear errors."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from controllers.modex.gestures import CostFunctionError
from teleop_app.cli import main as cli
from training.modex.llm import EXEMPLARS, LlmConfig, extract_code, generate_cost, messages

FINGERS = ("index", "middle", "ring", "thumb")
GOOD = (
    "Here you go:\n```python\ndef cost(tips):\n"
    "    return (tips[:, 0] - tips[:, 1]).norm(dim=-1)\n```\n"
)


class FakeServer:
    def __init__(self, answer):
        self.answer, self.requests = answer, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, dict(self.headers), body))
                if outer.answer is None:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"model overloaded")
                    return
                reply = {"choices": [{"message": {"role": "assistant", "content": outer.answer}}]}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    servers = []

    def make(answer):
        servers.append(FakeServer(answer))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_the_prompt_has_two_exemplars_and_the_request():
    chat = messages("peace sign", FINGERS)
    assert chat[0]["role"] == "system" and "index, middle, ring, thumb" in chat[0]["content"]
    assert [m["role"] for m in chat[1:]] == ["user", "assistant"] * 2 + ["user"]
    assert chat[-1]["content"] == "Gesture: peace sign"
    for _, code in EXEMPLARS:  # the exemplars themselves pass the check
        from controllers.modex.gestures import compile_cost

        compile_cost(code, FINGERS)


def test_generated_code_is_checked_and_usable(server):
    s = server(GOOD)
    cfg = LlmConfig(s.url, "fake-model", api_key="k123", timeout_s=5)
    code, cost = generate_cost("index and middle together", FINGERS, cfg)
    assert code.startswith("def cost(tips):")
    states = torch.zeros(4, 1, 12)
    states[:, 0, 0] = torch.arange(4.0)
    assert torch.allclose(cost(states), torch.arange(4.0))
    path, headers, body = s.requests[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer k123"
    assert body["model"] == "fake-model" and len(body["messages"]) == 6


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("I cannot help with that.", "no cost function"),
        ("```python\ndef cost(tips):\n    return tips.sum()\n```", "one number per sample"),
        ("```python\ndef cost(tips) return 0\n```", "SyntaxError"),
        (None, "HTTP 500"),
    ],
)
def test_bad_answers_are_refused(server, answer, message):
    s = server(answer)
    with pytest.raises(CostFunctionError, match=message):
        generate_cost("fist", FINGERS, LlmConfig(s.url, "m", timeout_s=5))


def test_unreachable_or_unconfigured(monkeypatch):
    with pytest.raises(CostFunctionError, match="cannot reach"):
        generate_cost("fist", FINGERS, LlmConfig("http://127.0.0.1:9/v1", "m", timeout_s=2))
    monkeypatch.delenv("DEXTELEOP_LLM_ENDPOINT", raising=False)
    with pytest.raises(CostFunctionError, match="no language model configured"):
        LlmConfig.from_env(None, "m")
    assert extract_code("def cost(tips):\n    return tips[:, 0, 0]").startswith("def cost")
    fenced = "```Python3\ndef cost(tips):\n    return tips[:, 0, 0]\n```"
    assert extract_code(fenced) == "def cost(tips):\n    return tips[:, 0, 0]\n"


def test_command_line_saves_a_checked_cost_file(server, tmp_path, capsys):
    s = server(GOOD)
    out = tmp_path / "pinch.py"
    assert (
        cli(["modex", "cost", "pinch", "--endpoint", s.url, "--model", "m", "--out", str(out)]) == 0
    )
    from controllers.modex.gestures import load_cost_file

    load_cost_file(out, FINGERS)
    bad = server("no code here")
    assert cli(["modex", "cost", "pinch", "--endpoint", bad.url, "--model", "m"]) == 2
    assert "no cost function" in capsys.readouterr().err
