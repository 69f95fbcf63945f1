# Junction build. `make run` and `make test` are the two entry points of README.md.
CC      ?= cc
CSTD    := -std=c17 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
# OpenSSL 3 (Debian's libssl-dev) terminates TLS on listeners (src/tls/).
SSL_CFLAGS := $(shell pkg-config --cflags libssl libcrypto 2>/dev/null)
SSL_LIBS   := $(shell pkg-config --libs libssl libcrypto 2>/dev/null || echo -lssl -lcrypto)
LIBS    := -lyaml -lpcre2-8 -lnghttp2 -ljansson $(SSL_LIBS) -lcrypt -lpthread -lm
INC     := -Isrc $(SSL_CFLAGS)
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
DEFS    := -DJN_VERSION=\"$(VERSION)\"

SRC      := $(shell find src -name '*.c' ! -name main.c | sort)
HDR      := $(shell find src -name '*.h')
# Assembler sources embed files with .incbin (src/admin/dashboard.S: the dashboard
# page); ASM_DEPS are those files, so editing the page rebuilds the object.
ASM      := $(shell find src -name '*.S' | sort)
ASM_DEPS := src/admin/dashboard.html
UNIT_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
PY       := /usr/bin/python3
FUZZ_TIME ?= 60

REL_CFLAGS  := $(CSTD) $(WARN) $(INC) $(DEFS) -O2 -g
SAN_CFLAGS  := $(CSTD) $(WARN) $(INC) $(DEFS) -O1 -g -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined

REL_OBJ := $(SRC:%.c=build/rel/%.o) $(ASM:%.S=build/rel/%.o)
SAN_OBJ := $(SRC:%.c=build/san/%.o) $(ASM:%.S=build/san/%.o)

.PHONY: all deps browser-deps run test unit unit-san integration integration-san fuzz fuzz-build bench \
        clean format lint

all: build/junction

deps:
	@sh scripts/install-deps.sh

build/rel/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -c $< -o $@

build/san/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -c $< -o $@

# Data only, no code: no sanitizer or optimisation flags apply.
build/rel/%.o: %.S $(ASM_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

build/san/%.o: %.S $(ASM_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

build/junction: $(REL_OBJ) build/rel/src/main.o
	$(CC) $(REL_CFLAGS) -o $@ $^ $(LIBS)

build/junction-san: $(SAN_OBJ) build/san/src/main.o
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS)

build/unit-tests: $(UNIT_SRC) $(REL_OBJ)
	$(CC) $(REL_CFLAGS) -Itests/unit -o $@ $(UNIT_SRC) $(REL_OBJ) $(LIBS) -lcriterion

build/unit-tests-san: $(UNIT_SRC) $(SAN_OBJ)
	$(CC) $(SAN_CFLAGS) -Itests/unit -o $@ $(UNIT_SRC) $(SAN_OBJ) $(LIBS) -lcriterion

run: deps build/junction
	./build/junction -c examples/junction.yaml

unit: deps build/unit-tests
	./build/unit-tests --jobs 2

unit-san: deps build/unit-tests-san
	ASAN_OPTIONS=detect_leaks=1 ./build/unit-tests-san --jobs 2

# The browser test's npm packages (tests/integration/test_dashboard.py runs
# tests/browser/dashboard.mjs): npm ci again only when the lock file changes.
BROWSER_DEPS := tests/browser/node_modules/.package-lock.json
$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error >/dev/null
	@touch $@

browser-deps: $(BROWSER_DEPS)

integration: deps build/junction $(BROWSER_DEPS)
	JUNCTION_BIN=$(CURDIR)/build/junction $(PY) -m pytest -q tests/integration

integration-san: deps build/junction-san $(BROWSER_DEPS)
	JUNCTION_BIN=$(CURDIR)/build/junction-san JUNCTION_SANITIZED=1 $(PY) -m pytest -q tests/integration

# Everything a change must pass: unit and integration tests, plain and sanitized.
test: deps
	$(MAKE) build/junction build/junction-san build/unit-tests build/unit-tests-san
	$(MAKE) unit unit-san integration integration-san

# libFuzzer targets, each run FUZZ_TIME seconds from its seed corpus.
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
build/fuzz/%: tests/fuzz/%.c $(SRC) $(ASM) $(ASM_DEPS) $(HDR) $(wildcard tests/fuzz/*.h)
	@mkdir -p build/fuzz
	clang $(CSTD) $(INC) $(DEFS) -g -O1 -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -o $@ $< $(SRC) $(ASM) $(LIBS)

fuzz-build: deps $(FUZZ_BIN)

fuzz: fuzz-build
	@for f in $(FUZZ_BIN); do \
	    n=$$(basename $$f); mkdir -p build/corpus/$$n; \
	    echo "== $$n for $(FUZZ_TIME)s"; \
	    $$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	        build/corpus/$$n tests/fuzz/corpus/$$n || exit 1; \
	done

bench: deps build/junction
	$(PY) bench/run.py

format:
	clang-format -i $(shell find src tests -name '*.[ch]')

lint:
	clang-tidy $(SRC) -- $(CSTD) $(INC) $(DEFS)
	cppcheck --quiet --enable=warning,performance --std=c11 $(INC) src

clean:
	rm -rf build
