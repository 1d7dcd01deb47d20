#!/usr/bin/env bash
# One entry point for set-up and the main jobs. Creates its own virtualenv on first use.
#   ./run.sh            start the chat app on the bundled corpus (ingests it on first start)
#   ./run.sh test       install everything (incl. Chromium) and run the whole test suite + eval gate
#   ./run.sh cli ARGS   run the `reportqa` command inside the virtualenv
set -euo pipefail
cd "$(dirname "$0")"
VENV="${REPORTQA_VENV:-.venv}"

setup() {  # $1: extras ("" or "[dev]")
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  local stamp="$VENV/.installed-$(cat pyproject.toml | sha256sum | cut -c1-12)${1:+-dev}"
  if [ ! -f "$stamp" ]; then
    echo "==> installing reportqa$1 into $VENV (first run only; torch 2.13.0 CPU)" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build.
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -e ".$1"
    touch "$stamp"
  fi
}

chromium() {  # Debian's Chromium for the real-browser tests (no browser download).
  if [ ! -x /usr/bin/chromium ]; then
    echo "==> installing Debian chromium" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
  fi
}

case "${1:-app}" in
  app)
    setup ""
    shift || true
    exec "$VENV/bin/reportqa" ui "$@"
    ;;
  test)
    setup "[dev]"
    chromium
    shift || true
    "$VENV/bin/ruff" check ingest rag ui evals reportqa tests benchmarks
    "$VENV/bin/mypy" ingest rag reportqa evals ui tests benchmarks
    if [ "${REPORTQA_SKIP_LLM:-0}" != 1 ]; then
      # The local-LLM recipe (own venv + pinned, hash-checked GGUF); the real-server tests
      # then must run rather than skip. Cached under ~/.cache/reportqa after the first time.
      bash scripts/local_llm.sh wheel >&2
      bash scripts/local_llm.sh model >&2
      export REPORTQA_LLM_TEST=1
    fi
    # Accuracy gate first (so pytest's summary is the last line): the real pipeline on the
    # gold set, against the minimums committed in evals/thresholds.json.
    gate_index="$(mktemp -d)"
    trap 'rm -rf "$gate_index"' EXIT
    "$VENV/bin/reportqa" ingest corpus --index "$gate_index" --json >/dev/null
    "$VENV/bin/reportqa" eval evals/questions.jsonl --index "$gate_index" \
      --out artifacts/eval --gate evals/thresholds.json
    "$VENV/bin/pytest" -q "$@"
    ;;
  cli)
    setup ""
    shift
    exec "$VENV/bin/reportqa" "$@"
    ;;
  *)
    echo "usage: ./run.sh [app|test|cli ARGS...]" >&2
    exit 2
    ;;
esac
