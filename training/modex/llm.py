"""Gesture cost functions written by a language model (MoDex Sec. 3.4), optional.

The operator describes a gesture in words; an OpenAI-compatible chat endpoint that the
operator configures (``--endpoint``, or ``DEXTELEOP_LLM_ENDPOINT``; key in
``DEXTELEOP_LLM_API_KEY``) is shown two example cost functions (in-context learning, as in
the paper) and asked for a third. The answer's code is checked exactly like a cost file
(callable, one finite number per sample) before anything uses it; that check runs the code
in this process, like loading any cost file, so read what a model wrote before you drive a
real hand with it (``--out`` saves it for that). Nothing here is needed to run MoDex: it
only talks to a server the user names.

    dexteleop modex cost "peace sign: index and middle out, the rest curled" \
        --endpoint http://localhost:8000/v1 --model my-model --out peace.py
"""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from controllers.modex.gestures import Cost, CostFunctionError, compile_cost

# Two exemplars, written for our fingertip convention (the paper's idea, our own functions).
EXEMPLARS = (
    (
        "point: the index finger straight out, the other fingers and the thumb curled in",
        """def cost(tips):
    # the index tip far out along x (towards the fingertips of the open hand)
    straight = -tips[:, 0, 0]
    # middle and ring tips pulled back towards the palm and below it (z < 0)
    curled = tips[:, 1:3, 0].mean(-1) + torch.relu(tips[:, 1:3, 2]).mean(-1)
    # the thumb tip tucked next to the middle finger
    thumb = (tips[:, 3] - tips[:, 1]).norm(dim=-1)
    return straight + curled + 0.5 * thumb""",
    ),
    (
        "OK sign: thumb and index tips touching, the other fingers stretched",
        """def cost(tips):
    # thumb tip on the index tip
    ring_shape = (tips[:, 3] - tips[:, 0]).norm(dim=-1)
    # middle and ring as far out as they go
    stretched = -tips[:, 1:3, 0].mean(-1)
    return 2.0 * ring_shape + stretched""",
    ),
)

SYSTEM = """You write cost functions for a robot hand planner. Write one Python function
`cost(tips)`. `tips` is a torch tensor (N, {n}, 3): N candidate hand poses, the fingertips
of the fingers {fingers} (in this order), in metres, in the hand frame: x points from the
wrist towards the fingertips of the open hand, y towards the thumb side, z out of the back
of the hand (curling a finger moves its tip to smaller x and negative z). Return a tensor
(N,) of costs, lower is better, finite. Only `torch` and `math` are available. Answer with
the function in one ```python block and nothing else."""


@dataclass
class LlmConfig:
    """Attributes: endpoint (base URL of an OpenAI-compatible API, e.g. ``.../v1``); model;
    api_key (or None); timeout_s."""

    endpoint: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0

    @classmethod
    def from_env(cls, endpoint: str | None = None, model: str | None = None) -> LlmConfig:
        endpoint = endpoint or os.environ.get("DEXTELEOP_LLM_ENDPOINT")
        model = model or os.environ.get("DEXTELEOP_LLM_MODEL")
        if not endpoint or not model:
            raise CostFunctionError(
                "no language model configured: give --endpoint and --model (or set "
                "DEXTELEOP_LLM_ENDPOINT and DEXTELEOP_LLM_MODEL)"
            )
        return cls(endpoint, model, os.environ.get("DEXTELEOP_LLM_API_KEY"))


def messages(request: str, fingers: tuple[str, ...]) -> list[dict[str, str]]:
    """The chat: the conventions, two worked examples, then the operator's request."""
    out = [{"role": "system", "content": SYSTEM.format(n=len(fingers), fingers=", ".join(fingers))}]
    for description, code in EXEMPLARS:
        out.append({"role": "user", "content": f"Gesture: {description}"})
        out.append({"role": "assistant", "content": f"```python\n{code}\n```"})
    out.append({"role": "user", "content": f"Gesture: {request.strip()}"})
    return out


def extract_code(text: str) -> str:
    """The Python code of an answer: its first fenced block, or the whole text if it
    defines ``cost`` without fences."""
    m = re.search(r"```[\w+-]*[ \t]*\n(.*?)```", text, re.S)
    if m:
        return m.group(1).strip() + "\n"
    if "def cost" in text:
        return text.strip() + "\n"
    raise CostFunctionError("the language model's answer has no cost function in it")


def _post(cfg: LlmConfig, body: dict[str, Any]) -> dict[str, Any]:
    url = cfg.endpoint.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    if cfg.api_key:
        headers["Authorization"] = f"Bearer {cfg.api_key}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        detail = e.read()[:200].decode("utf-8", "replace")
        raise CostFunctionError(f"{url}: HTTP {e.code}: {detail}") from None
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError) as e:
        raise CostFunctionError(f"cannot reach {url}: {getattr(e, 'reason', e)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CostFunctionError(f"{url}: the answer is not JSON ({e})") from None


def generate_cost(request: str, fingers: tuple[str, ...], cfg: LlmConfig) -> tuple[str, Cost]:
    """Ask the model for a cost function for ``request``; (its source, the checked cost).
    CostFunctionError (saying why) if the server cannot be reached or the code is bad."""
    if not request.strip():
        raise CostFunctionError("describe the gesture")
    body = {"model": cfg.model, "messages": messages(request, fingers), "temperature": 0.2}
    answer = _post(cfg, body)
    try:
        text = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise CostFunctionError("the answer is not a chat completion") from None
    code = extract_code(str(text))
    return code, compile_cost(code, fingers, where="generated cost")
