# mmxsam developer entry points. Every target installs what it needs first (tools/setup_env.sh is
# idempotent: the first run builds ./.venv in ~10 minutes, later runs check it in seconds).
PY := .venv/bin/python
DATA := data/shapes

.PHONY: setup demo test test-fast data clean-data

setup:
	bash tools/setup_env.sh

# The main job on the bundled default: generate the synthetic multi-task data set, draw browsed
# samples, build the tiny tokenizer, train the three tiny X-SAM stages (1 -> 2 -> 3) and ask the stage-3
# model a chat question and a referring prompt (generation mode), drawn into outputs/demo/.
demo: setup
	$(PY) tools/dataset_converters/generate_shapes.py $(DATA) --render 4
	$(PY) tools/analysis_tools/browse_dataset.py configs/_base_/datasets/shapes_panoptic.py \
		--output-dir outputs/browse --not-show --show-number 4
	$(PY) tools/misc/build_tiny_tokenizer.py $(DATA) --out $(DATA)/tokenizer
	$(PY) tools/misc/tiny_pipeline.py --work-dir work_dirs --out-dir outputs/demo
	@echo "demo done: data overviews in $(DATA)/browse/ and outputs/browse/, checkpoints in work_dirs/, answers in outputs/demo/"

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
