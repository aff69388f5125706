"""tools/benchmark/lit_decoding.py runs and writes its results files."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from glid_tools.benchmark.lit_decoding import benchmark_decoding


@pytest.mark.slow
def test_benchmark_script_writes_results(project_root, tmp_path):
    cmd = [
        sys.executable, 'tools/benchmark/lit_decoding.py', '--arch', 'tiny',
        '--batch-size', '2', '--seq-len', '8', '--memory-tokens', '4',
        '--memory-dims', '16', '--vocab-size', '300', '--num-beams', '2',
        '--out-dir',
        str(tmp_path)
    ]
    proc = subprocess.run(
        cmd, cwd=project_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / 'lit_decoding.json') as f:
        result = json.load(f)
    for key in ('greedy_cached_tok_s', 'greedy_uncached_tok_s',
                'cache_speedup', 'beam_latency_s', 'beam_vs_greedy'):
        assert result[key] > 0
    assert result['batch_size'] == 2 and result['seq_len'] == 8
    md = (tmp_path / 'lit_decoding.md').read_text()
    assert 'cache speed-up' in md and osp.getsize(
        tmp_path / 'lit_decoding.md') > 100


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='batch_size'):
        benchmark_decoding(batch_size=0)
    with pytest.raises(ValueError, match='seq_len'):
        benchmark_decoding(seq_len=1)


def test_presets_follow_the_device():
    """The paper's decoding setting on a GPU; a CPU-sized one on the CPU
    (the paper's took over 15 minutes on 2 cores); options override."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'lit_decoding',
        osp.join(
            osp.dirname(__file__), '..', '..', 'tools', 'benchmark',
            'lit_decoding.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    gpu = tool.parse_args(['--device', 'cuda'])
    assert (gpu.preset, gpu.batch_size, gpu.arch) == ('paper', 64, 'base')
    cpu = tool.parse_args([])
    assert (cpu.preset, cpu.batch_size, cpu.arch) == ('cpu', 8, 'small')
    mixed = tool.parse_args(['--preset', 'paper', '--batch-size', '2'])
    assert (mixed.batch_size, mixed.seq_len) == (2, 64)
