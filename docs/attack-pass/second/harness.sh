# source me: start_model SCRIPT_JSON ; sets PORT, CODEX_HOME config
: "${CODEX_BIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/dist/codex}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
start_model() {
  local script=$1
  PF=$(mktemp -u /var/tmp/fm.XXXXXX)
  PFS="${PFS:-} $PF"; trap 'for f in $PFS; do rm -f "$f" "$f.log"; done' EXIT
  python3 "$HERE/fakemodel.py" "$script" "$PF" & FMPID=$!
  for i in $(seq 50); do [ -s "$PF" ] && break; sleep 0.1; done
  PORT=$(cat "$PF")
  mkdir -p "$CODEX_HOME"
  cat > "$CODEX_HOME/config.toml" <<EOT
model = "gpt-5"
model_provider = "fake"
[model_providers.fake]
name = "fake"
base_url = "http://127.0.0.1:$PORT/v1"
wire_api = "responses"
env_key = "FAKE_API_KEY"
EOT
  export FAKE_API_KEY=sk-fake-secret-123
}
stop_model() { kill "$FMPID" 2>/dev/null; wait "$FMPID" 2>/dev/null; }
