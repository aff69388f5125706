"""Plot GPPF's lego unit selection from a training run's scalars.

    python tools/analysis/gppf_plot_selection.py WORK_DIR_OR_SCALARS_JSON \
        [--out-dir DIR]

Reads the ``gppf/<task>/layer<l>/unit<k>`` scalars that
``GPPFSelectionLoggerHook`` writes to ``vis_data/scalars.json`` and writes
``gppf_selection_heatmap.png`` (final selection per task, GPPF Fig. 3/10)
and ``gppf_selection_curves.png`` (selection over iterations, Fig. 11).
The logic lives in :mod:`glid_tools.gppf_plots`.
"""
import argparse

from glid_tools.gppf_plots import plot_selection


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'path',
        help='work dir of a GPPF run (newest vis_data/scalars.json with '
        'gppf scalars is used) or a scalars.json file')
    parser.add_argument(
        '--out-dir',
        help='folder for the PNGs (default: next to the scalars.json)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    written = plot_selection(args.path, out_dir=args.out_dir)
    print(f'read {written["scalars"]}')
    print(f'heat map: {written["heatmap"]}')
    print(f'curves:   {written["curves"]}')


if __name__ == '__main__':
    main()
