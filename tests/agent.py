"""The documented configuration's agent: the caller log answers only with an agent's API token, as in Zammad."""

import json
from pathlib import Path

_CONFIG = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "documented-config.json").read_text())
AGENT_TOKEN = _CONFIG["agents"][0]["token"]
AGENT_AUTH = {"Authorization": f"Token token={AGENT_TOKEN}"}
