# src/ckpt: checkpoint files (safetensors, DeepSpeed's layout, llm.c's GPT-2 model files),
# and the PyTorch reference fixture's tools
libzerolab_a_SOURCES += %D%/safetensors.c %D%/safetensors.h %D%/atomic_file.c %D%/atomic_file.h \
    %D%/ckpt_file.c %D%/ckpt_file.h %D%/ckpt_layout.c %D%/ckpt_layout.h %D%/ckpt_read.c %D%/ckpt_read.h \
    %D%/ckpt_tools.c %D%/ckpt_tools.h %D%/llmc.c %D%/llmc.h
zlckptdir = $(zlincdir)/ckpt
zlckpt_HEADERS = %D%/safetensors.h %D%/atomic_file.h %D%/ckpt_file.h %D%/ckpt_layout.h %D%/ckpt_read.h %D%/ckpt_tools.h %D%/llmc.h
ZL_UNIT_TESTS += tests/unit/check_safetensors tests/unit/check_pytorch tests/unit/check_llmc

# The PyTorch reference fixture (tests/fixtures/gpt_reference.safetensors, committed).
# `make fixtures` regenerates it: zl_export_init writes zerolab's initial weights and the
# batches, tests/pytorch_reference.py trains the same model in PyTorch. Only this target
# needs PyTorch; the test that reads the fixture (check_pytorch) does not. Override the
# interpreter with `make fixtures TORCH_PYTHON3=...` (it needs torch and numpy).
noinst_PROGRAMS += tests/tools/zl_export_init
tests_tools_zl_export_init_SOURCES = tests/tools/zl_export_init.c tests/tools/gpt_reference.h
tests_tools_zl_export_init_LDADD = $(ZL_LIBS)
EXTRA_DIST += tests/pytorch_reference.py

# `zerolab ckpt to-fp32` into PyTorch (tests/cli/check_ckpt_logits.sh): zl_ckpt_probe runs
# zerolab's forward on a checkpoint and writes the head's probabilities and the loss;
# tests/ckpt_logits.py runs the reference model on the to-fp32 file and compares.
noinst_PROGRAMS += tests/tools/zl_ckpt_probe
tests_tools_zl_ckpt_probe_SOURCES = tests/tools/zl_ckpt_probe.c
tests_tools_zl_ckpt_probe_LDADD = $(ZL_LIBS)
EXTRA_DIST += tests/ckpt_logits.py
CLEANFILES += tests/tools/gpt_init.safetensors
TORCH_PYTHON3 = /usr/bin/python3

fixtures: tests/tools/zl_export_init$(EXEEXT)
	tests/tools/zl_export_init$(EXEEXT) tests/tools/gpt_init.safetensors
	$(TORCH_PYTHON3) $(srcdir)/tests/pytorch_reference.py tests/tools/gpt_init.safetensors \
	    $(srcdir)/tests/fixtures/gpt_reference.safetensors
.PHONY: fixtures
