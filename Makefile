# Thin wrapper over CMake (as neovim's Makefile is). The two commands the
# README gives:
#   make demo   install dependencies, build, run the end-to-end demo
#   make test   install dependencies, build, run the whole test suite, then
#               build with ASan+UBSan and run the whole suite again
# Others: make build, make test-plain (the suite on the normal build only),
# make test-sanitize (ASan+UBSan only), make fuzz (libFuzzer targets with
# clang; FUZZ_SECONDS=N also runs each for N s, FUZZ_JOBS at once),
# make check-all (the suite with the load tests at full length), make
# coverage (line and branch coverage per folder), make mutation (mutants of
# the security checks), make format, make clean.

BUILD_DIR ?= build
SAN_DIR ?= build-sanitize
FUZZ_DIR ?= build-fuzz
COV_DIR ?= build-coverage
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
CTEST_FLAGS ?= --output-on-failure --timeout 600
# Tests run two at a time: each integration test has its own daemons.
CTEST_JOBS ?= $(JOBS)

.PHONY: all deps build demo test test-plain test-sanitize check-all coverage mutation fuzz \
	format clean help

all: build

help:
	@sed -n '1,11s/^# \{0,1\}//p' Makefile

deps:
	@scripts/install-deps

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	scripts/demo $(BUILD_DIR)

# The whole suite runs twice: on the normal build (what `make demo` uses) and
# under AddressSanitizer + UndefinedBehaviorSanitizer.
test: test-plain test-sanitize

test-plain: build
	cd $(BUILD_DIR) && ctest $(CTEST_FLAGS) -j $(CTEST_JOBS)

test-sanitize: deps
	cmake -S . -B $(SAN_DIR) -DTG_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(SAN_DIR) -j $(JOBS)
	cd $(SAN_DIR) && ctest $(CTEST_FLAGS) -j $(CTEST_JOBS)

# make fuzz FUZZ_SECONDS=600 FUZZ_JOBS=2: every target for 10 minutes, two
# at a time, on scratch copies of the seed corpora (tests/fuzz/campaign.sh;
# results in $(FUZZ_DIR)/campaign/).
FUZZ_SECONDS ?=
FUZZ_JOBS ?= 1
# The suite on the normal build with the load tests (label load) at their
# full length: 60 s each instead of the 10 s of `make test`.
check-all: build
	cd $(BUILD_DIR) && TG_LOAD_SECONDS=60 ctest $(CTEST_FLAGS) -j $(CTEST_JOBS)

# Line and branch coverage of the product code (tests, bench and examples
# left out) after the whole suite, per folder; HTML in
# $(COV_DIR)/coverage/index.html. The suite's result is printed first; a
# failed test fails the target after the report.
coverage: deps
	cmake -S . -B $(COV_DIR) -DTG_COVERAGE=ON $(CMAKE_FLAGS)
	cmake --build $(COV_DIR) -j $(JOBS)
	find $(COV_DIR) -name '*.gcda' -delete
	(cd $(COV_DIR) && ctest $(CTEST_FLAGS) -j $(CTEST_JOBS)); echo $$? > $(COV_DIR)/ctest.rc
	scripts/coverage-report $(COV_DIR)
	@exit $$(cat $(COV_DIR)/ctest.rc)

# Mutants of the security checks, each against the tests that should kill
# it (tests/mutation/README.md); not run by CI: about an hour on two cores.
# E.g. make mutation MUTATION_ARGS="--only ^tok-"
MUTATION_ARGS ?=
mutation: deps
	tests/mutation/run.sh --jobs $(JOBS) $(MUTATION_ARGS)

fuzz: deps
	cmake -S . -B $(FUZZ_DIR) -DTG_FUZZ=ON -DCMAKE_C_COMPILER=clang $(CMAKE_FLAGS)
	cmake --build $(FUZZ_DIR) -j $(JOBS)
	@if [ -n "$(FUZZ_SECONDS)" ]; then \
	  tests/fuzz/campaign.sh --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) $(FUZZ_DIR); \
	fi

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(SAN_DIR) $(FUZZ_DIR) $(COV_DIR)
