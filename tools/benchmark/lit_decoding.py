"""LiT decoder decoding speed: greedy with vs without the KV cache, beam vs
greedy. Thin wrapper over :func:`glid_tools.benchmark.lit_decoding.
benchmark_decoding`.

    python tools/benchmark/lit_decoding.py              # CPU preset
    python tools/benchmark/lit_decoding.py --device cuda  # paper preset
    python tools/benchmark/lit_decoding.py --preset paper # paper on CPU

Presets: ``paper`` = Sec. 4's decoding setting (batch 64, 64 tokens, the
base decoder on 196 x 768 ViT-B/16 tokens, 32k vocabulary; over 15 minutes
on 2 CPU cores), ``cpu`` = batch 8, 32 tokens, the small decoder, 8k
vocabulary (19 s on 2 CPU cores, 2026-12-06). The default is ``paper`` on a
GPU and ``cpu`` on the CPU; any size option overrides the preset.
"""
import argparse
import json

from glid_tools.benchmark.lit_decoding import benchmark_decoding, write_results

PRESETS = dict(
    paper=dict(
        batch_size=64,
        seq_len=64,
        arch='base',
        memory_tokens=196,
        memory_dims=768,
        vocab_size=32000),
    cpu=dict(
        batch_size=8,
        seq_len=32,
        arch='small',
        memory_tokens=196,
        memory_dims=768,
        vocab_size=8000))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument(
        '--preset',
        choices=sorted(PRESETS),
        default=None,
        help='size preset (default: paper on cuda, cpu on cpu)')
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--seq-len', type=int, default=None)
    p.add_argument('--arch', default=None)
    p.add_argument('--num-layers', type=int, default=None)
    p.add_argument('--memory-tokens', type=int, default=None)
    p.add_argument('--memory-dims', type=int, default=None)
    p.add_argument('--vocab-size', type=int, default=None)
    p.add_argument('--num-beams', type=int, default=4)
    p.add_argument('--repeats', type=int, default=1)
    p.add_argument('--device', default='cpu')
    p.add_argument('--out-dir', default='work_dirs/benchmark')
    p.add_argument(
        '--no-progress',
        action='store_true',
        help='no progress bar (elapsed time and ETA)')
    args = p.parse_args(argv)
    preset = args.preset or ('paper'
                             if args.device.startswith('cuda') else 'cpu')
    for key, value in PRESETS[preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.preset = preset
    return args


def main(argv=None):
    args = parse_args(argv)
    result = benchmark_decoding(
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        arch=args.arch,
        num_layers=args.num_layers,
        memory_tokens=args.memory_tokens,
        memory_dims=args.memory_dims,
        vocab_size=args.vocab_size,
        num_beams=args.num_beams,
        repeats=args.repeats,
        device=args.device,
        progress=not args.no_progress)
    result['preset'] = args.preset
    paths = write_results(result, args.out_dir)
    print(json.dumps(result, indent=2))
    print(f"results written to {paths['json']} and {paths['markdown']}")


if __name__ == '__main__':
    main()
