"""LiT decoder decoding speed: greedy with vs without the KV cache, beam vs
greedy. Thin wrapper over :func:`glid_mm.models.lit_decoder.benchmark.
benchmark_decoding`.

    python tools/benchmark/lit_decoding.py                  # issue settings
    python tools/benchmark/lit_decoding.py --device cuda
    python tools/benchmark/lit_decoding.py --arch tiny --batch-size 4 \
        --seq-len 16 --memory-tokens 16 --vocab-size 512    # CPU smoke
"""
import argparse
import json

from glid_mm.models.lit_decoder.benchmark import benchmark_decoding, \
    write_results


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--seq-len', type=int, default=64)
    p.add_argument('--arch', default='base')
    p.add_argument('--num-layers', type=int, default=None)
    p.add_argument('--memory-tokens', type=int, default=196)
    p.add_argument('--memory-dims', type=int, default=768)
    p.add_argument('--vocab-size', type=int, default=32000)
    p.add_argument('--num-beams', type=int, default=4)
    p.add_argument('--repeats', type=int, default=1)
    p.add_argument('--device', default='cpu')
    p.add_argument('--out-dir', default='work_dirs/benchmark')
    return p.parse_args(argv)


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
        device=args.device)
    paths = write_results(result, args.out_dir)
    print(json.dumps(result, indent=2))
    print(f"results written to {paths['json']} and {paths['markdown']}")


if __name__ == '__main__':
    main()
