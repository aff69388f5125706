"""Benchmarks of glid_mm against the models users run today.

Shared pieces: timing and peak memory (:mod:`.measure`), machine and
versions (:mod:`.environment`), FLOPs per part (:mod:`.flops`), the models
compared (:mod:`.models`) and the JSON + markdown writer (:mod:`.report`).
The command-line tools are ``tools/benchmark/*.py``.
"""
from glid_tools.benchmark.environment import (collect_environment,
                                              dense_bf16_peak_tflops)
from glid_tools.benchmark.flops import count_flops, param_counts
from glid_tools.benchmark.measure import autocast, peak_memory, time_fn
from glid_tools.benchmark.report import (NOT_RUN, NotRunnable, make_result,
                                         run_row, write_json_markdown,
                                         write_results)

__all__ = [
    'NOT_RUN', 'NotRunnable', 'autocast', 'collect_environment', 'count_flops',
    'dense_bf16_peak_tflops', 'make_result', 'param_counts', 'peak_memory',
    'run_row', 'time_fn', 'write_json_markdown', 'write_results'
]
