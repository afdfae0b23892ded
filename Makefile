# qat — top-level entry points. Everything real is in meson.build; this file only
# strings together: install missing packages → configure → build → run.
#
#   make quickstart   the main job: s1–s4 × 5 formats on English → unified + decoupled fits → plots + ρ table
#   make test         the cmocka suite (installs what it needs when run as root)
#   make test-asan    the suite under AddressSanitizer + UBSan
#   make bench        speed figures for bench/README.md
#   make experiments  the papers' findings at CPU scale, a-g's first stages (EXP="a c" for some)
#   make experiments-long  the long parts: c's stage 3, e's and g's s4, h (backward), i (data axis)

BUILD      ?= build
ASAN_BUILD ?= build-asan
QAT        := $(BUILD)/cli/qat
MESON_OPTS ?=

.PHONY: all deps build build-qat test test-asan quickstart bench experiments experiments-long clean

all: build

deps:
	@QAT_WITH_PYTHON=$(QAT_WITH_PYTHON) scripts/install-deps.sh

$(BUILD)/build.ninja:
	@scripts/install-deps.sh
	meson setup $(BUILD) --buildtype=release $(MESON_OPTS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# the qat binary alone: what the quickstart and the experiments run (the tests and benches
# are two fifths of a clean build's time, ~15 s of 36 on 2 cores)
build-qat: $(BUILD)/build.ninja
	ninja -C $(BUILD) cli/qat

test: QAT_WITH_PYTHON = 1
test: deps build
	@scripts/run-tests.sh $(BUILD)

test-asan: deps
	@[ -f $(ASAN_BUILD)/build.ninja ] || meson setup $(ASAN_BUILD) --buildtype=debugoptimized \
		-Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)
	ninja -C $(ASAN_BUILD)
	@UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		scripts/run-tests.sh $(ASAN_BUILD)

quickstart: build-qat
	@scripts/quickstart.sh $(BUILD)

bench: build
	@scripts/bench.sh $(BUILD)

experiments: build-qat
	@QAT=$(QAT) experiments/run.sh $(EXP)

experiments-long: build-qat
	@QAT=$(QAT) experiments/run.sh long

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
