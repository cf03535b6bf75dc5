# voxbus: `make demo` sets everything up and holds a demo conversation; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := .stamps
LLAMA_VERSION := 0.3.36
# A portable AVX2 build: GGML_NATIVE would enable AMX/AVX-512 paths that crash on some virtual
# CPUs. pip's wheel cache ignores CMAKE_ARGS, so the wheel is built once into a folder named after
# its build flavour and installed from there.
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_WHEELS := $(HOME)/.cache/voxbus/wheels/llama-cpp-python-$(LLAMA_VERSION)-avx2
export OMP_WAIT_POLICY := PASSIVE

.PHONY: install models models-test sip-peers browser demo up test test-unit test-stress test-long lint bench pipecat-venv clean

install: $(STAMPS)/install

$(STAMPS)/install: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@if ! ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "building llama-cpp-python $(LLAMA_VERSION) (once; about 4 minutes on 2 cores)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel -q --no-deps --no-cache-dir \
	    -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION); fi
	$(PY) -m pip install -q --disable-pip-version-check --find-links $(LLAMA_WHEELS) -e '.[dev,bench]'
	@touch $@

models: install
	$(VENV)/bin/voxbus --profile default models fetch

models-test: install
	$(VENV)/bin/voxbus --profile test models fetch

# real SIP peers for the tests, from Debian: sipp (sip-tester), baresip, kamailio
sip-peers:
	@command -v sipp >/dev/null && command -v baresip >/dev/null && command -v kamailio >/dev/null && command -v espeak-ng >/dev/null && command -v flite >/dev/null \
	  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q sip-tester baresip kamailio espeak-ng flite; }

# the console's tests drive Debian's chromium through its chromedriver (no browser download), and
# the terminal console in tmux
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v tmux >/dev/null \
	  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver tmux; }

# a caller moves a dental appointment over SIP: the clinic's calendar and call log as third parties
demo: models
	$(PY) examples/clinic/demo.py --out out/demo

up: models
	$(VENV)/bin/voxbus up

# the test profile's tiny LLM, and the default one for the tests whose model must call tools;
# PYTEST_WORKERS test processes side by side (pytest-xdist; each with its own slice of ports)
PYTEST_WORKERS ?= 2
PYTEST = $(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) --dist worksteal
test: models models-test sip-peers browser
	$(PYTEST)

# the suite while other processes keep both cores busy (STRESS_LOAD percent each): a test that
# holds only on an idle machine fails here
STRESS_LOAD ?= 60
test-stress: models models-test sip-peers browser
	@command -v stress-ng >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q stress-ng; }
	stress-ng --cpu 2 --cpu-load $(STRESS_LOAD) --timeout 3600s --quiet & load=$$!; \
	  $(PYTEST); status=$$?; kill $$load; exit $$status

# the suite with answers that never end before 60 tokens: a test that assumes the tiny model
# answers briefly fails on every machine, not only on some
test-long: models models-test sip-peers browser
	VOXBUS_LLM__MIN_TOKENS=60 $(PYTEST)

test-unit: install
	$(VENV)/bin/pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check voxbus tests bench

# the peer of bench/latency.py --peer pipecat, in a virtual environment of its own: pipecat-ai pins
# versions of packages voxbus also uses
PIPECAT_VERSION := 1.14.0
pipecat-venv: $(STAMPS)/pipecat-venv

$(STAMPS)/pipecat-venv:
	@mkdir -p $(STAMPS)
	test -x .venv-pipecat/bin/python || $(PYTHON) -m venv .venv-pipecat
	.venv-pipecat/bin/pip install -q --disable-pip-version-check "pipecat-ai[whisper,piper,silero]==$(PIPECAT_VERSION)"
	touch $@

bench: models models-test pipecat-venv
	$(PY) bench/latency.py --profile test --profile default --out bench/results
	$(PY) bench/latency.py --profile default --dialogue appointment --caller-voice espeak-ng:en-us+f2 --peer pipecat --peer pipecat-vad --name latency_peer --out bench/results
	$(PY) bench/latency.py --profile default --dialogue appointment --caller-voice espeak-ng:en-us+f2 --variant off:VOXBUS_STT__PARTIAL_INTERVAL_MS=0 --variant partials: --variant off-again:VOXBUS_STT__PARTIAL_INTERVAL_MS=0 --variant partials-again: --name latency_partials --out bench/results
	$(PY) bench/turn_taking.py --profile default --out bench/results
	$(PY) bench/gateway.py --calls 12 --seconds 30 --out bench/results
	$(PY) bench/gateway_load.py --calls 100 --shards 25 --seconds 60 --soak-calls 20 --soak-minutes 10 --out bench/results
	$(PY) bench/sip_torture.py --mutations 10000 --mutation-rate 100 --out bench/results
	$(PY) bench/sip_torture.py --mutations 10000 --mutation-rate 20 --through-kamailio --out bench/results
	$(PY) bench/bus_fuzz.py --per-subject 1000 --out bench/results
	$(PY) bench/echo.py --out bench/results
	$(PY) bench/barge_words.py --out bench/results
	for db in 20 35 10; do $(PY) bench/barge_words.py --lines gate,delay-gate,window-gate --echo-db -$$db --name barge_words_echo$$db --out bench/results || exit 1; done
	$(PY) bench/stt_wer.py --out bench/results
	$(PY) bench/stt_wer.py --language en --said --name stt_wer_said --out bench/results
	$(PY) bench/stt_wer.py --language en --codec PCMU --model stt --voices flite --beam 1 --beam 5 --name stt_wer_flite --out bench/results
	$(PY) bench/french_call.py --out bench/results
	$(PY) bench/nats_outage.py --kills 5 --out bench/results
	$(VENV)/bin/voxbus models fetch --name qwen2.5-coder-0.5b-instruct-q4_k_m
	$(PY) bench/tool_calls.py --out bench/results
	$(PY) bench/early_openers.py --out bench/results
	$(PY) bench/tool_call_speed.py --out bench/results
	$(PY) bench/latency.py --profile default --dialogue appointment --caller-voice espeak-ng:en-us+f2 --variant on: --variant off:VOXBUS_AGENT__EARLY_OPENER=false --variant on2: --variant off2:VOXBUS_AGENT__EARLY_OPENER=false --variant on3: --variant off3:VOXBUS_AGENT__EARLY_OPENER=false --name latency_early_opener --out bench/results
	$(PY) bench/remote_llm.py --profile default --out bench/results
	$(PY) bench/clinic_calls.py --out bench/results --calls 10
	$(PY) bench/clinic_calls.py --out bench/results --calls 10 --name clinic_calls_early_hold
	VOXBUS_AGENT__EARLY_HOLD=false $(PY) bench/clinic_calls.py --out bench/results --calls 10 --name clinic_calls_late_hold
	$(PY) bench/clinic_calls.py --out bench/results --calls 10 --voices flite:slt,flite:rms --name clinic_calls_flite
	VOXBUS_STT__PROMPT_AGENT_WORDS=false $(PY) bench/clinic_calls.py --out bench/results --calls 10 --name clinic_calls_meant_off
	$(PY) bench/console.py --calls 4 --out bench/results
	$(PY) bench/batch_decode.py --model qwen2.5-coder-1.5b-instruct-q4_k_m --model qwen2.5-coder-0.5b-instruct-q4_k_m --out bench/results
	$(PY) bench/capacity.py --profile default --profile 0.5b --calls 1,2,3,4 --llm-parallel 1,4 --out bench/results

clean:
	rm -rf $(VENV) $(STAMPS) build *.egg-info out
