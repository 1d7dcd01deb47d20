# Local LLM (llama-cpp-python server + Qwen2.5-Coder-0.5B-Instruct GGUF), kept out of .venv.
# See docs/local_llm.md. Every target is idempotent; `make llm` = wheel + model + server.
LLM_SCRIPT := scripts/local_llm.sh

.PHONY: llm llm-wheel llm-model llm-server llm-stop

llm: llm-wheel llm-model
	bash $(LLM_SCRIPT) server

llm-wheel:
	bash $(LLM_SCRIPT) wheel

llm-model:
	bash $(LLM_SCRIPT) model

llm-server:
	bash $(LLM_SCRIPT) server

llm-stop:
	bash $(LLM_SCRIPT) stop
