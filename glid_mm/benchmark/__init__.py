"""Benchmarks of glid_mm against the models users run today.

Shared pieces: timing and peak memory (:mod:`.measure`), machine and
versions (:mod:`.environment`), FLOPs per part (:mod:`.flops`), the models
compared (:mod:`.models`) and the JSON + markdown writer (:mod:`.report`).
The command-line tools are ``tools/benchmark/*.py``.
"""
from .environment import collect_environment, dense_bf16_peak_tflops
from .flops import count_flops, param_counts
from .measure import autocast, peak_memory, time_fn
from .report import (NOT_RUN, NotRunnable, make_result, run_row,
                     write_json_markdown, write_results)

__all__ = [
    'NOT_RUN', 'NotRunnable', 'autocast', 'collect_environment',
    'count_flops', 'dense_bf16_peak_tflops', 'make_result', 'param_counts',
    'peak_memory', 'run_row', 'time_fn', 'write_json_markdown',
    'write_results'
]
