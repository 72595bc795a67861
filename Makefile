# mmxsam developer entry points. Every target installs what it needs first (tools/setup_env.sh is
# idempotent: the first run builds ./.venv in ~10 minutes, later runs check it in seconds).
PY := .venv/bin/python
DATA := data/shapes

.PHONY: setup demo test test-fast data clean-data

setup:
	bash tools/setup_env.sh

# The main job on the bundled default: generate the synthetic multi-task data set, draw browsed
# samples, and build the tiny tokenizer.
demo: setup
	$(PY) tools/dataset_converters/generate_shapes.py $(DATA) --render 4
	$(PY) tools/analysis_tools/browse_dataset.py configs/_base_/datasets/shapes_panoptic.py \
		--output-dir outputs/browse --not-show --show-number 4
	$(PY) tools/misc/build_tiny_tokenizer.py $(DATA) --out $(DATA)/tokenizer
	@echo "demo done: overviews in $(DATA)/browse/, mmdet browse_dataset output in outputs/browse/"

# The test suite. pytest's exit code 5 (no test collected) is a failure, not a pass.
test: setup
	@$(PY) -m pytest tests -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

# Without the slow end-to-end tests (training, tools in subprocesses).
test-fast: setup
	$(PY) -m pytest tests -q -m "not slow"

data: setup
	$(PY) tools/dataset_converters/generate_shapes.py $(DATA)

clean-data:
	rm -rf $(DATA) outputs
