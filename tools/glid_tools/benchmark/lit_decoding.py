"""Decoding speed of the LiT decoder (Sec. 5.8), behind
``tools/benchmark/lit_decoding.py``.

Measures, on random weights and random image tokens (speed does not depend
on the values): greedy decoding with the key/value cache vs re-running the
whole prefix every step, in generated tokens per second, and the latency of
beam search vs greedy. ``<eos>`` is disabled so every run decodes the full
``seq_len`` and the numbers compare equal work.
"""
import platform
from typing import Optional

import torch

from glid_mm.models.decoders.lit_decoding import beam_search, sample_decode
from glid_mm.models.decoders.lit_text_decoder import LiTTextDecoder
from glid_tools.benchmark.measure import time_fn
from glid_tools.benchmark.report import write_json_markdown
from glid_tools.progress import Progress


def _time(fn, device: torch.device, repeats: int) -> float:
    """Mean seconds of ``repeats`` runs after one warm-up run (the suite's
    shared timer, :func:`glid_tools.benchmark.measure.time_fn`)."""
    return time_fn(fn, device, warmup=1, iters=repeats)['mean_s']


def benchmark_decoding(batch_size: int = 64,
                       seq_len: int = 64,
                       arch: str = 'base',
                       num_layers: Optional[int] = None,
                       memory_tokens: int = 196,
                       memory_dims: int = 768,
                       vocab_size: int = 32000,
                       num_beams: int = 4,
                       repeats: int = 1,
                       device: str = 'cpu',
                       seed: int = 0,
                       progress: bool = True) -> dict:
    """Time greedy (cached / uncached) and beam decoding.

    Args:
        batch_size, seq_len: Sec. 4: 64 and 64. ``seq_len`` is the
            decoder's ``max_length``; ``seq_len - 1`` tokens are generated
            after ``<bos>``.
        arch, num_layers: :class:`LiTTextDecoder` preset and depth.
        memory_tokens, memory_dims: Image tokens (ViT-B/16 at 224 px: 196 x
            768).
        vocab_size: Output vocabulary.
        num_beams: Beams for the beam-search latency.
        repeats: Timed runs per measurement (after one warm-up run).
        progress: Show a progress bar with elapsed time and ETA over the
            three measurements (mmengine's ``ProgressBar``).

    Returns a dict with the settings, ``greedy_cached_tok_s``,
    ``greedy_uncached_tok_s``, ``cache_speedup``, ``greedy_latency_s``,
    ``beam_latency_s`` and ``beam_vs_greedy``.
    """
    for key, val in dict(
            batch_size=batch_size,
            seq_len=seq_len,
            num_beams=num_beams,
            repeats=repeats).items():
        if not isinstance(val, int) or val < 1:
            raise ValueError(f'{key} must be a positive int, got {val!r}')
    if seq_len < 2:
        raise ValueError(f'seq_len must be >= 2, got {seq_len}')
    dev = torch.device(device)
    torch.manual_seed(seed)
    decoder = LiTTextDecoder(
        vocab_size,
        memory_dims,
        arch=arch,
        num_layers=num_layers,
        max_length=seq_len).to(dev).eval()
    memory = torch.randn(batch_size, memory_tokens, memory_dims, device=dev)
    prompts = [[1]] * batch_size
    common = dict(eos_id=-1, pad_id=0, max_length=seq_len)
    new_tokens = batch_size * (seq_len - 1)

    def greedy(use_cache):
        return lambda: sample_decode(
            decoder, memory, prompts, use_cache=use_cache, **common)

    runs = [
        ('greedy, KV cache', greedy(True)),
        ('greedy, no cache', greedy(False)),
        (f'beam search ({num_beams} beams)', lambda: beam_search(
            decoder, memory, prompts, num_beams=num_beams, alpha=0.1, **common)
         )
    ]
    bar = Progress(len(runs), enabled=progress)
    times = []
    for _, fn in runs:
        times.append(_time(fn, dev, repeats))
        bar.update()
    bar.close()
    t_cached, t_uncached, t_beam = times
    return dict(
        device=(torch.cuda.get_device_name(dev) if dev.type == 'cuda' else
                f'cpu ({platform.processor() or platform.machine()}, '
                f'{torch.get_num_threads()} threads)'),
        batch_size=batch_size,
        seq_len=seq_len,
        arch=arch,
        num_layers=decoder.num_layers,
        embed_dims=decoder.arch['embed_dims'],
        memory_tokens=memory_tokens,
        vocab_size=vocab_size,
        num_beams=num_beams,
        repeats=repeats,
        greedy_cached_tok_s=new_tokens / t_cached,
        greedy_uncached_tok_s=new_tokens / t_uncached,
        cache_speedup=t_uncached / t_cached,
        greedy_latency_s=t_cached,
        beam_latency_s=t_beam,
        beam_vs_greedy=t_beam / t_cached)


def write_results(result: dict,
                  out_dir: str,
                  name: str = 'lit_decoding') -> dict:
    """Write ``{name}.json`` and ``{name}.md`` to ``out_dir`` with the
    benchmark suite's writer; return their paths."""
    r = result
    lines = [
        '# LiT decoder decoding speed', '',
        f"Device: {r['device']}. Decoder `{r['arch']}` with "
        f"{r['num_layers']} layers, width {r['embed_dims']}, vocabulary "
        f"{r['vocab_size']}; {r['memory_tokens']} image tokens; batch "
        f"{r['batch_size']}, sequence length {r['seq_len']}; mean of "
        f"{r['repeats']} run(s) after a warm-up.", '',
        '| measurement | value |', '|---|---|',
        f"| greedy, KV cache (tokens/s) | {r['greedy_cached_tok_s']:.1f} |",
        f"| greedy, no cache (tokens/s) | {r['greedy_uncached_tok_s']:.1f} |",
        f"| cache speed-up | {r['cache_speedup']:.2f}x |",
        f"| greedy latency (s/batch) | {r['greedy_latency_s']:.3f} |",
        f"| beam-{r['num_beams']} latency (s/batch) | "
        f"{r['beam_latency_s']:.3f} |",
        f"| beam-{r['num_beams']} / greedy | {r['beam_vs_greedy']:.2f}x |", ''
    ]
    return write_json_markdown(out_dir, name, result, '\n'.join(lines))
